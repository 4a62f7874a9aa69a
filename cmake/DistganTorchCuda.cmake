# A CUDA LibTorch and the CUDA toolkit it needs at configure time; NCCL's header and library from
# one installation. Used by DistganDependencies.cmake.

# The TorchConfig.cmake that find_package(Torch) will take, looked for the same way (Torch_DIR,
# then CMAKE_PREFIX_PATH and its share/cmake, lib/cmake subfolders); "" when none is found.
function(distgan_find_torch_config out)
  set(candidates ${Torch_DIR} $ENV{Torch_DIR})
  foreach(prefix IN LISTS CMAKE_PREFIX_PATH)
    list(APPEND candidates ${prefix} ${prefix}/Torch ${prefix}/share/cmake/Torch ${prefix}/lib/cmake/Torch
         ${prefix}/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/Torch)
  endforeach()
  foreach(dir IN LISTS candidates)
    if(EXISTS "${dir}/TorchConfig.cmake")
      set(${out} "${dir}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

# Before find_package(Torch): for a CUDA LibTorch (its lib/ has libc10_cuda), points CUDACXX and the
# toolkit-root variables of FindCUDA and FindCUDAToolkit at the toolkit of the nvcc found (CUDACXX,
# $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin, PATH), unless the user set them; stops with
# a clear message when there is no nvcc. A CPU LibTorch (Debian's) needs none of it.
macro(distgan_prepare_cuda_torch)
  distgan_find_torch_config(distgan_torch_config)
  if(distgan_torch_config AND EXISTS "${distgan_torch_config}/../../../lib/libc10_cuda.so")
    if(DEFINED ENV{CUDACXX})
      set(DISTGAN_NVCC "$ENV{CUDACXX}")
    else()
      find_program(DISTGAN_NVCC nvcc HINTS ENV CUDA_HOME ENV CUDA_PATH /usr/local/cuda PATH_SUFFIXES bin)
    endif()
    if(NOT DISTGAN_NVCC)
      message(FATAL_ERROR "distgan: the LibTorch in ${distgan_torch_config} is a CUDA build, and its CMake needs "
                          "the CUDA toolkit's nvcc, which was not found: set CUDACXX=/path/to/nvcc or CUDA_HOME to "
                          "the toolkit, or put the toolkit's bin/ on PATH.")
    endif()
    get_filename_component(distgan_cuda_root "${DISTGAN_NVCC}" DIRECTORY)
    get_filename_component(distgan_cuda_root "${distgan_cuda_root}" DIRECTORY)
    if(NOT DEFINED ENV{CUDACXX})
      set(ENV{CUDACXX} "${DISTGAN_NVCC}")
    endif()
    if(NOT DEFINED ENV{CUDA_PATH})
      set(ENV{CUDA_PATH} "${distgan_cuda_root}")
    endif()
    if(NOT CUDAToolkit_ROOT)
      set(CUDAToolkit_ROOT "${distgan_cuda_root}")
    endif()
    if(NOT CUDA_TOOLKIT_ROOT_DIR)
      set(CUDA_TOOLKIT_ROOT_DIR "${distgan_cuda_root}")
    endif()
    message(STATUS "distgan: CUDA LibTorch in ${distgan_torch_config}; CUDA toolkit ${distgan_cuda_root}")
  endif()
endmacro()

# Warns when nccl.h and libnccl come from two installations (two NCCL versions: the header's
# structures and the library's may differ).
function(distgan_check_same_nccl_prefix include_dir library)
  get_filename_component(header_root "${include_dir}" DIRECTORY)
  get_filename_component(library_root "${library}" DIRECTORY)
  get_filename_component(library_root "${library_root}" DIRECTORY)
  get_filename_component(header_root "${header_root}" REALPATH)
  get_filename_component(library_root "${library_root}" REALPATH)
  if(NOT header_root STREQUAL library_root)
    message(WARNING "distgan: nccl.h (${include_dir}) and libnccl (${library}) are from two installations; "
                    "set NCCL_HOME to the one LibTorch uses")
  endif()
endfunction()
