#include "trainer/outputs/version.h"

namespace distgan {

// DISTGAN_VERSION comes from CMake's project(VERSION) (trainer/CMakeLists.txt).
const char* distgan_version() { return DISTGAN_VERSION; }

}  // namespace distgan
