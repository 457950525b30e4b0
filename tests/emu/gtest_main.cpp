// tests/emu/gtest_main.cpp — the main of the emulator's test binary: GoogleTest, plus a listener that
// names each test during which the emulator's checker reported something, and a failing exit status
// when it reported anything at all (a report is a bug a real GPU may expose: the run must fail).
#include <cstdio>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

namespace {

class CheckerListener : public ::testing::EmptyTestEventListener {
public:
    void OnTestStart(const ::testing::TestInfo&) override {
        before_ = emu::error_count();
        emu::unload_kernels();  // each test as the first of its process (a lazy-loading driver)
    }
    void OnTestEnd(const ::testing::TestInfo& t) override {
        const long n = emu::error_count() - before_;
        if (n > 0) {
            std::fprintf(stderr, "emu checker: %ld report(s) during %s.%s\n", n,
                         t.test_suite_name(), t.name());
            failed_ += n;
        }
    }
    long failed_ = 0;

private:
    long before_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    auto* listener = new CheckerListener;
    ::testing::UnitTest::GetInstance()->listeners().Append(listener);
    int rc = RUN_ALL_TESTS();
    const long total = emu::error_count();
    if (total > 0) {
        std::fprintf(stderr, "emu checker: %ld report(s) in all: FAILED\n", total);
        rc = 1;
    } else {
        std::fprintf(stderr, "emu checker: no reports\n");
    }
    return rc;
}
