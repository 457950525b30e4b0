# cmake/sources.cmake — what the library is made of, in one place: its version and its sources.
# Included by the top-level CMakeLists.txt (before project(), which takes MINICNN_VERSION) and by
# the CUDA emulator's build (tests/emu/CMakeLists.txt), which compiles the same sources against its
# emulated runtime. Paths are absolute, found from this file's folder, so both projects get the same
# lists. Only commands allowed before project() (set, file, get_filename_component).
#
# The sources that depend on a configuration are chosen by each build, not here: host/mpi/ or
# host/no_mpi/ (MPI), cuda/nccl/ or cuda/no_nccl/ (NCCL), host/no_cuda/ (no CUDA backend).
get_filename_component(_minicnn_root ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)

set(MINICNN_VERSION 0.1.0)

# Host code: tensors, dispatch, model, training, data, and the CPU backend (host/cpu/).
file(GLOB MINICNN_HOST_SOURCES CONFIGURE_DEPENDS ${_minicnn_root}/host/*.cpp
                                                 ${_minicnn_root}/host/cpu/*.cpp)
# host/cpu/ is not an include folder of its own: its headers are reached as "cpu/X.h", so that the
# CUDA backend's headers of the same names (dense.h, train_kernels.h) are never shadowed.
set(MINICNN_HOST_INCLUDE_DIRS ${_minicnn_root}/host)

# The CUDA backend: kernels and their launchers (cuda/*.cu), and its host code (cuda/*.cpp: context,
# the functional API's CUDA path, the CUDA engine). cuda/ holds internal headers (context, device
# memory, checks): not part of the installed interface.
file(GLOB MINICNN_CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS ${_minicnn_root}/cuda/*.cu)
file(GLOB MINICNN_CUDA_HOST_SOURCES CONFIGURE_DEPENDS ${_minicnn_root}/cuda/*.cpp)
set(MINICNN_CUDA_INCLUDE_DIRS ${_minicnn_root}/cuda)

unset(_minicnn_root)
