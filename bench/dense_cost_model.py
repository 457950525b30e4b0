#!/usr/bin/env python3
# bench/dense_cost_model.py — the cost MODEL behind cuda::dense::kCublasMinWeights (bench/README.md,
# "Cost MODEL of the dense layers' two GEMM paths"): estimated microseconds of a dense layer's
# forward + backward on the tiled kernel and on cuBLAS, H100 SXM. Every efficiency below is an
# assumption, not a measurement; it prints the README's table.
P = 67e12  # FP32 peak, FLOP/s
BW = 0.6 * 3.35e12  # usable HBM bandwidth, bytes/s
L = 2e-6  # launch, ramp and tail of a graph-launched kernel, s
def f(blocks): return min(1.0, blocks/132)
def tiles(x): return (x+31)//32
def tiled(n,K,N):
    fb=tiles(n)*tiles(N); useful=(n*N)/(tiles(n)*32*tiles(N)*32)
    tf=max(2*n*K*N/(0.25*useful*f(fb)*P), 4*(n*K+K*N+n*N)/BW)+L
    bb=tiles(K+1)*tiles(N)+tiles(n)*tiles(K)
    tb=max(4*n*K*N/(0.25*f(bb)*P), 4*(2*n*K+2*K*N+2*n*N)/BW)+L
    return tf,tb
def cublas(n,K,N):
    g=lambda m,nn,k: max(2*m*nn*k/(0.5*P), 4*(m*k+k*nn+m*nn)/BW)+L
    ep=8*n*N/BW+L
    tf=g(n,N,K)+ep
    tb=ep+g(N,K,n)+g(K,n,N)+4*n*N/BW+L
    return tf,tb
print("| batch | layer | weights | tiled fwd + bwd (us) | cuBLAS fwd + bwd (us) |")
print("|---|---|---|---|---|")
for n in (32,256):
  for K,N in [(256,256),(512,256),(512,512),(784,1024),(1024,1024),(4096,4096)]:
    a=tiled(n,K,N); b=cublas(n,K,N)
    print("| %d | %d x %d | %d | %.1f + %.1f = %.1f | %.1f + %.1f = %.1f |"%(n,K,N,K*N,a[0]*1e6,a[1]*1e6,(a[0]+a[1])*1e6,b[0]*1e6,b[1]*1e6,(b[0]+b[1])*1e6))
