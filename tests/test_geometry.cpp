// tests/test_geometry.cpp — docs/operations.md's padding and output-size rules, computed once in conv_geometry
// / pool_geometry for every backend.
#include <gtest/gtest.h>

#include "minicnn/geometry.h"

using namespace minicnn;

TEST(Geometry, SamePaddingFormula) {
    // ph = ceil(((h - 1) * s + k - h) / 2)
    EXPECT_EQ(same_padding(28, 5, 1), 2);
    EXPECT_EQ(same_padding(28, 2, 1), 1);   // ceil(1 / 2)
    EXPECT_EQ(same_padding(28, 3, 2), 15);  // ceil(29 / 2)
    EXPECT_EQ(same_padding(28, 1, 1), 0);
    EXPECT_EQ(same_padding(5, 4, 3), 6);  // ceil(11 / 2)
}

TEST(Geometry, SameWithEvenKernelGivesOneMoreRow) {
    ConvGeom g = conv_geometry({2, 28, 28, 1}, {2, 2, 1, 3}, Padding::same(), {1, 1}, "t");
    EXPECT_EQ(g.ph, 1);
    EXPECT_EQ(g.oh, 29);
    EXPECT_EQ(g.ow, 29);
    EXPECT_EQ(g.out_shape(), (Shape{2, 29, 29, 3}));
}

TEST(Geometry, SameWithStrideTwoKeepsTheSize) {
    for (int k : {1, 2, 3, 4, 5}) {
        ConvGeom g = conv_geometry({1, 28, 27, 1}, {k, k, 1, 1}, Padding::same(), {2, 2}, "t");
        EXPECT_EQ(g.oh, 28) << "k=" << k;
        EXPECT_EQ(g.ow, 27) << "k=" << k;
    }
}

TEST(Geometry, SameWithOddKernelStrideOneKeepsTheSize) {
    ConvGeom g = conv_geometry({1, 28, 28, 1}, {5, 5, 1, 6}, Padding::same(), {1, 1}, "t");
    EXPECT_EQ(g.ph, 2);
    EXPECT_EQ(g.oh, 28);
}

TEST(Geometry, SameWithOneByOneKernelHasNoPadding) {
    ConvGeom g = conv_geometry({1, 7, 9, 3}, {1, 1, 3, 4}, Padding::same(), {1, 1}, "t");
    EXPECT_EQ(g.ph, 0);
    EXPECT_EQ(g.pw, 0);
    EXPECT_EQ(g.out_shape(), (Shape{1, 7, 9, 4}));
}

TEST(Geometry, ValidAndExplicit) {
    ConvGeom v = conv_geometry({3, 14, 14, 6}, {5, 5, 6, 16}, Padding::valid(), {1, 1}, "t");
    EXPECT_EQ(v.out_shape(), (Shape{3, 10, 10, 16}));
    ConvGeom e =
        conv_geometry({1, 10, 11, 2}, {3, 4, 2, 5}, Padding::explicit_pad(1, 2), {2, 3}, "t");
    EXPECT_EQ(e.ph, 1);
    EXPECT_EQ(e.pw, 2);
    EXPECT_EQ(e.oh, (10 + 2 - 3) / 2 + 1);
    EXPECT_EQ(e.ow, (11 + 4 - 4) / 3 + 1);
}

TEST(Geometry, PoolRowsNoWindowReaches) {
    PoolGeom g = pool_geometry({1, 28, 28, 1}, {3, 3}, {3, 3}, "t");
    EXPECT_EQ(g.oh, 9);
    EXPECT_EQ(g.ow, 9);
    PoolGeom l = pool_geometry({4, 28, 28, 6}, {2, 2}, {2, 2}, "t");
    EXPECT_EQ(l.out_shape(), (Shape{4, 14, 14, 6}));
}

TEST(Geometry, PaddingParse) {
    EXPECT_EQ(Padding::parse("same").kind, Padding::Kind::same);
    EXPECT_EQ(Padding::parse("valid").kind, Padding::Kind::valid);
    EXPECT_EQ(Padding::explicit_pad(2, 3).str(), "(2, 3)");
    EXPECT_THROW(Padding::parse("full"), ArgumentError);
    EXPECT_THROW(Padding::explicit_pad(-1, 0), ArgumentError);
}
