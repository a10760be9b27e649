// libFuzzer's entry for programs that keep their own main (compiler-rt FuzzerInterface.h,
// LLVM 13+). SwiftPM names every executable's entry point `<module>_main` and aliases `main`
// to it, so libFuzzer's own `main` is never linked: each target's `@main` calls this instead.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
