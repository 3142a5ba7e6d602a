// libFuzzer target: the .npy reader. Properties: no crash / sanitizer report / wild
// allocation on any bytes; bad files throw only UsageError; a file that parses re-encodes to
// a file that parses to the same array.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "base/errors.h"
#include "base/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gsqhw::NpyArray array;
  try {
    array = gsqhw::parse_npy(data, size, "fuzz.npy");
  } catch (const gsqhw::UsageError&) {
    return 0;
  }
  std::vector<uint8_t> again = gsqhw::encode_npy(array);
  gsqhw::NpyArray back = gsqhw::parse_npy(again.data(), again.size(), "re-encoded");
  if (back.dtype != array.dtype || back.shape != array.shape || back.data != array.data) {
    std::fprintf(stderr, "property failed: .npy re-encode round trip\n");
    std::abort();
  }
  (void)array.to_float();
  try {
    (void)array.to_int64();
  } catch (const gsqhw::UsageError&) {
    // float32 arrays with non-integer values
  }
  return 0;
}
