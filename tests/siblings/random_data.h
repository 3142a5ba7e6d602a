// Deterministic synthetic data for the sibling tests (own generator: identical on every
// platform, unlike std::normal_distribution).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace gsqhw::test {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  double uniform() { return (engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int below(int n) { return static_cast<int>(uniform() * n); }
  int8_t ternary() { return static_cast<int8_t>(below(3) - 1); }

  std::vector<float> normals(size_t n, double sigma) {
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(normal() * sigma);
    return v;
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace gsqhw::test
