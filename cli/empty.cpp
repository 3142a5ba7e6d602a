// Intentionally empty: lets a library target exist while its folder has no sources yet
// (CMake refuses a STATIC library without any).
