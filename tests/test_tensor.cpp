// tests/test_tensor.cpp — the host Tensor: zero-filled, shape-checked, dtype-checked, move-only; large
// blocks reused.
#include <gtest/gtest.h>

#include <algorithm>

#include "minicnn/error.h"
#include "minicnn/tensor.h"

using namespace minicnn;

TEST(Tensor, ZeroFilledWithShape) {
    Tensor t({2, 3, 4, 5});
    EXPECT_EQ(t.numel(), 120);
    EXPECT_EQ(t.nbytes(), 480u);
    EXPECT_EQ(t.dtype(), DType::f32);
    for (std::int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.data<float>()[i], 0.0f);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw()) % 64, 0u);
}

TEST(Tensor, DtypeIsChecked) {
    Tensor t({4}, DType::f64);
    EXPECT_NO_THROW(t.data<double>());
    EXPECT_THROW(t.data<float>(), ArgumentError);
    EXPECT_THROW(t.view().ptr<float>(), ArgumentError);
}

TEST(Tensor, FromValuesAndAt) {
    Tensor t = Tensor::from<double>({1, 2, 2, 1}, {1, 2, 3, 4});
    EXPECT_EQ(t.at<double>(0, 1, 0, 0), 3.0);
    EXPECT_THROW(t.at<double>(0, 2, 0, 0), ArgumentError);
    EXPECT_THROW(Tensor::from<float>({2, 2}, {1.f, 2.f, 3.f}), ArgumentError);
}

TEST(Tensor, NegativeDimensionIsAnError) {
    try {
        Tensor t({2, -1});
        FAIL() << "expected ArgumentError";
    } catch (const ArgumentError& e) {
        EXPECT_NE(std::string(e.what()).find("(2, -1)"), std::string::npos) << e.what();
    }
}

TEST(Tensor, CloneAstypeReshape) {
    Tensor t = Tensor::from<float>({2, 2}, {1.5f, -2.f, 3.f, 4.f});
    Tensor c = t.clone();
    c.data<float>()[0] = 9.f;
    EXPECT_EQ(t.data<float>()[0], 1.5f);
    Tensor d = t.astype(DType::f64);
    EXPECT_EQ(d.data<double>()[1], -2.0);
    Tensor r = std::move(d).reshaped({4, 1});
    EXPECT_EQ(r.shape(), (Shape{4, 1}));
    EXPECT_THROW(std::move(r).reshaped({3}), ArgumentError);
}

TEST(Tensor, ShapeStr) {
    EXPECT_EQ(shape_str({2, 28, 28, 1}), "(2, 28, 28, 1)");
    EXPECT_EQ(shape_str({5}), "(5,)");
}

// Large blocks are reused (host/tensor.cpp's cache): a freed block of the same size comes back,
// and the zero-filled constructor still zeroes it; one handed out by release() comes back through
// free_storage.
TEST(Tensor, LargeBlocksAreReusedAndStillZeroed) {
    const Shape shape = {1, 300, 300, 3};  // 1 MiB: cached
    Tensor a(shape);
    std::fill(a.data<float>(), a.data<float>() + a.numel(), 7.0f);
    const void* block = a.raw();
    a = Tensor();
    Tensor b(shape);
    EXPECT_EQ(b.raw(), block);
    EXPECT_EQ(std::count(b.data<float>(), b.data<float>() + b.numel(), 0.0f), b.numel());
    void* p = b.release();
    Tensor::free_storage(p);
    Tensor c = Tensor::uninitialized(shape, DType::i32);
    EXPECT_EQ(c.raw(), block);
    EXPECT_EQ(c.shape(), shape);
    EXPECT_EQ(c.dtype(), DType::i32);
    EXPECT_EQ(Tensor::uninitialized({0, 3}).numel(), 0);
    EXPECT_THROW(Tensor::uninitialized({-1}), ArgumentError);
}
