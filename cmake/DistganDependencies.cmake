# Finds every dependency with find_package and, when one is missing, names the Debian package that
# provides it (cluster/install-deps.sh installs them all).

macro(distgan_require pkg debian)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR
      "distgan: dependency '${pkg}' was not found. On Debian 12 install the package '${debian}' "
      "(or run: sudo bash cluster/install-deps.sh).")
  endif()
endmacro()

# A CUDA LibTorch's CMake needs the CUDA toolkit before distgan sees any of it: nvcc (CUDACXX or
# PATH) for enable_language(CUDA), and the toolkit's root for FindCUDA / FindCUDAToolkit
# (CUDA_TOOLKIT_ROOT_DIR, CUDAToolkit_ROOT, CUDA_PATH; neither reads CUDA_HOME). Many machines have
# the toolkit in $CUDA_HOME or /usr/local/cuda without its bin/ on PATH: point every one of them
# there, and say so clearly when there is no nvcc at all.
include(DistganTorchCuda)
distgan_prepare_cuda_torch()
distgan_require(Torch libtorch-dev)
distgan_require(MPI libopenmpi-dev COMPONENTS CXX)
# HDF5 from a private prefix (bench/gpu-check.sh on a machine without Debian's -dev packages): the
# header directory and library given directly, since FindHDF5 would ask the h5cc wrapper.
if(DISTGAN_HDF5_INCLUDE_DIR AND DISTGAN_HDF5_LIBRARY)
  add_library(distgan_hdf5 INTERFACE)
  target_include_directories(distgan_hdf5 SYSTEM INTERFACE ${DISTGAN_HDF5_INCLUDE_DIR})
  target_link_libraries(distgan_hdf5 INTERFACE ${DISTGAN_HDF5_LIBRARY})
else()
  distgan_require(HDF5 libhdf5-dev COMPONENTS C)
endif()
distgan_require(yaml-cpp libyaml-cpp-dev)
distgan_require(PNG libpng-dev)
distgan_require(ZLIB zlib1g-dev)
distgan_require(JPEG libjpeg62-turbo-dev)
distgan_require(PkgConfig pkg-config)
# libexif (JPEG orientation) and libwebp have no CMake config on Debian 12: pkg-config finds them.
pkg_check_modules(DISTGAN_IMAGE_LIBS IMPORTED_TARGET libexif libwebp)
if(NOT DISTGAN_IMAGE_LIBS_FOUND)
  message(FATAL_ERROR "distgan: libexif or libwebp was not found. On Debian 12 install the packages "
                      "'libexif-dev libwebp-dev' (or run: sudo bash cluster/install-deps.sh).")
endif()
distgan_require(CLI11 libcli11-dev)
distgan_require(nlohmann_json nlohmann-json3-dev)
distgan_require(Threads build-essential)
if(DISTGAN_BUILD_TESTS)
  distgan_require(GTest libgtest-dev)
endif()

# Debian's yaml-cpp 0.7 exports the target 'yaml-cpp'; newer releases 'yaml-cpp::yaml-cpp'.
if(TARGET yaml-cpp::yaml-cpp)
  set(DISTGAN_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(DISTGAN_YAML_TARGET yaml-cpp)
endif()

# HDF5's find module gives variables on CMake 3.25 and a target only in newer versions.
if(NOT TARGET distgan_hdf5)
  add_library(distgan_hdf5 INTERFACE)
  target_include_directories(distgan_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(distgan_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(distgan_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
endif()

# Torch's config adds CXX flags globally through TORCH_CXX_FLAGS; we use the target only.
add_library(distgan_torch INTERFACE)
target_link_libraries(distgan_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(distgan_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})

# oneDNN (libdnnl-dev 2.x): G's transposed convolutions on oneDNN's kernels on the CPU
# (trainer/model/onednn_conv_transpose.h). AUTO takes it only beside a LibTorch 1.x that links the
# same libdnnl.so.2 (Debian's): then the process has one oneDNN and one OpenMP, so
# torch::set_num_threads (cluster.threads) reaches oneDNN too. A pip LibTorch carries its own copies
# (and 2.x runs transposed convolutions on its oneDNN already). Found directly (headers and library):
# Debian's dnnl-config.cmake also demands OpenCL, which distgan does not use.
string(TOUPPER "${DISTGAN_WITH_ONEDNN}" distgan_with_onednn)
if(NOT distgan_with_onednn MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "distgan: DISTGAN_WITH_ONEDNN must be AUTO, ON or OFF (got '${DISTGAN_WITH_ONEDNN}')")
endif()
set(DISTGAN_HAVE_ONEDNN OFF)
if(NOT distgan_with_onednn STREQUAL "OFF")
  find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(DNNL_LIBRARY NAMES dnnl)
  find_library(DISTGAN_TORCH_CPU_LIBRARY torch_cpu HINTS ${TORCH_INSTALL_PREFIX}/lib)
  set(distgan_dnnl_major "")
  if(DNNL_INCLUDE_DIR)
    file(STRINGS "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h" distgan_dnnl_major REGEX "define DNNL_VERSION_MAJOR")
    string(REGEX REPLACE ".*MAJOR +([0-9]+).*" "\\1" distgan_dnnl_major "${distgan_dnnl_major}")
  endif()
  set(distgan_torch_links_dnnl OFF)
  if(CMAKE_OBJDUMP AND DISTGAN_TORCH_CPU_LIBRARY)
    execute_process(COMMAND ${CMAKE_OBJDUMP} -p ${DISTGAN_TORCH_CPU_LIBRARY} OUTPUT_VARIABLE distgan_torch_needed
                    ERROR_QUIET)
    if(distgan_torch_needed MATCHES "NEEDED +libdnnl\\.so\\.2")
      set(distgan_torch_links_dnnl ON)
    endif()
  endif()
  set(distgan_onednn_why "")
  if(NOT DNNL_LIBRARY OR NOT distgan_dnnl_major STREQUAL "2")
    set(distgan_onednn_why "oneDNN 2.x was not found (Debian 12: libdnnl-dev; major version '${distgan_dnnl_major}')")
  elseif(Torch_VERSION VERSION_GREATER_EQUAL 2)
    set(distgan_onednn_why "LibTorch ${Torch_VERSION} runs transposed convolutions on its own oneDNN")
  elseif(NOT distgan_torch_links_dnnl)
    set(distgan_onednn_why "LibTorch (${DISTGAN_TORCH_CPU_LIBRARY}) does not link the system's libdnnl.so.2")
  endif()
  if(distgan_onednn_why STREQUAL "" OR (distgan_with_onednn STREQUAL "ON" AND DNNL_LIBRARY AND distgan_dnnl_major STREQUAL "2"))
    set(DISTGAN_HAVE_ONEDNN ON)
    add_library(distgan_onednn INTERFACE)
    target_include_directories(distgan_onednn SYSTEM INTERFACE ${DNNL_INCLUDE_DIR})
    target_link_libraries(distgan_onednn INTERFACE ${DNNL_LIBRARY})
    target_compile_definitions(distgan_onednn INTERFACE DISTGAN_HAVE_ONEDNN=1)
    message(STATUS "distgan: oneDNN ${DNNL_LIBRARY} (transposed convolutions on the CPU)")
    if(NOT distgan_onednn_why STREQUAL "")
      message(WARNING "distgan: DISTGAN_WITH_ONEDNN=ON although ${distgan_onednn_why}")
    endif()
  elseif(distgan_with_onednn STREQUAL "ON")
    message(FATAL_ERROR "distgan: DISTGAN_WITH_ONEDNN=ON but ${distgan_onednn_why}.")
  else()
    message(STATUS "distgan: transposed convolutions on LibTorch's kernel: ${distgan_onednn_why}")
  endif()
endif()

# NCCL: compiled in when the CUDA toolkit's nccl.h and libnccl are found. A CUDA LibTorch brings its
# own NCCL (pip's nvidia-nccl beside torch, or in its lib/): that copy is looked for first, so one NCCL
# is loaded in the process (two copies under one soname would be two separate NCCLs). pip's NCCL has
# only libnccl.so.2, hence that name too.
set(DISTGAN_HAVE_NCCL OFF)
set(DISTGAN_TORCH_CUDA OFF)
if(C10_CUDA_LIBRARY)
  set(DISTGAN_TORCH_CUDA ON)  # a CUDA LibTorch: c10_cuda (current stream, caching allocator) is linked
endif()
if(NOT DISTGAN_WITH_NCCL STREQUAL "OFF")
  get_filename_component(distgan_torch_prefix "${TORCH_INSTALL_PREFIX}" ABSOLUTE)
  set(distgan_nccl_hints $ENV{NCCL_HOME} ${distgan_torch_prefix}/../nvidia/nccl ${distgan_torch_prefix})
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${distgan_nccl_hints} $ENV{CUDA_HOME} /usr/local/cuda PATH_SUFFIXES include)
  # NAMES_PER_DIR: the first directory that has either name wins (else a system libnccl.so would win
  # over pip's libnccl.so.2 beside torch, and LibTorch would run on that other NCCL too).
  find_library(NCCL_LIBRARY NAMES libnccl.so.2 nccl NAMES_PER_DIR HINTS ${distgan_nccl_hints} $ENV{CUDA_HOME}
               /usr/local/cuda PATH_SUFFIXES lib64 lib)
  find_path(CUDART_INCLUDE_DIR cuda_runtime_api.h HINTS $ENV{CUDA_HOME} /usr/local/cuda PATH_SUFFIXES include)
  find_library(CUDART_LIBRARY cudart HINTS $ENV{CUDA_HOME} /usr/local/cuda PATH_SUFFIXES lib64 lib)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND CUDART_INCLUDE_DIR AND CUDART_LIBRARY)
    set(DISTGAN_HAVE_NCCL ON)
    add_library(distgan_nccl INTERFACE)
    target_include_directories(distgan_nccl SYSTEM INTERFACE ${NCCL_INCLUDE_DIR} ${CUDART_INCLUDE_DIR})
    target_compile_definitions(distgan_nccl INTERFACE DISTGAN_HAVE_NCCL=1)
    if(DISTGAN_TORCH_CUDA)
      # The CUDA runtime LibTorch links (torch::cudart, in TORCH_LIBRARIES): one runtime in the process.
      target_link_libraries(distgan_nccl INTERFACE ${NCCL_LIBRARY})
      target_compile_definitions(distgan_nccl INTERFACE DISTGAN_TORCH_CUDA=1)
    else()
      target_link_libraries(distgan_nccl INTERFACE ${NCCL_LIBRARY} ${CUDART_LIBRARY})
    endif()
    distgan_check_same_nccl_prefix("${NCCL_INCLUDE_DIR}" "${NCCL_LIBRARY}")
    message(STATUS "distgan: NCCL ${NCCL_LIBRARY} (headers ${NCCL_INCLUDE_DIR})")
  elseif(DISTGAN_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "distgan: DISTGAN_WITH_NCCL=ON but nccl.h/libnccl or the CUDA runtime were not "
                        "found (looked in $NCCL_HOME, beside LibTorch, $CUDA_HOME and /usr/local/cuda).")
  endif()
endif()
