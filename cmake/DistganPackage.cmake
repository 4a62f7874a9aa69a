# The Debian package: `cpack -G DEB` in the build directory (or `cmake --build build --target
# package`) writes distgan_<version>_<arch>.deb with the files of `cmake --install` under /usr.
#
# Depends is declared, not computed by dpkg-shlibdeps: shlibdeps sees only the libraries linked,
# so it would miss openmpi-bin (the launcher) and OpenBLAS (LibTorch runs ~4x slower on the
# reference BLAS), and it stops at a library no package owns (NCCL under /usr/local/cuda). The list
# below is what dpkg-shlibdeps gives for a Debian 12 build plus those two, and the install_deb test
# checks that every library the packaged executable links comes from a package named here.

set(DISTGAN_PACKAGE_MAINTAINER "distgan maintainers <distgan@example.org>" CACHE STRING
    "Maintainer field of the Debian package")
set(DISTGAN_DEB_EXTRA_DEPENDS "" CACHE STRING
    "Added to the Debian package's Depends, e.g. a site's NCCL and CUDA runtime packages")

string(REGEX MATCH "^[0-9]+\\.[0-9]+" distgan_torch_abi "${Torch_VERSION}")
set(distgan_deb_depends
  "libtorch${distgan_torch_abi}" "libopenblas0-pthread"
  "libopenmpi3 (>= 4.1.4)" "openmpi-bin"
  "libhdf5-103-1" "libyaml-cpp0.7 (>= 0.7.0)"
  "libpng16-16 (>= 1.6.2-1)" "zlib1g (>= 1:1.2.0)" "libjpeg62-turbo (>= 1.3.1)"
  "libexif12 (>= 0.6.21-1~)" "libwebp7 (>= 1.2.4)"
  "libc6 (>= 2.34)" "libstdc++6 (>= 12)" "libgcc-s1 (>= 3.0)")
if(DISTGAN_HAVE_ONEDNN)  # transposed convolutions on oneDNN (the libdnnl.so.2 LibTorch links too)
  list(APPEND distgan_deb_depends "libdnnl2 (>= 2.6)")
endif()
if(TARGET distgan_events)  # TensorBoard event files, compiled in when protobuf was found
  list(APPEND distgan_deb_depends "libprotobuf32 (>= 3.21.12)")
endif()
if(DISTGAN_DEB_EXTRA_DEPENDS)
  list(APPEND distgan_deb_depends ${DISTGAN_DEB_EXTRA_DEPENDS})
elseif(DISTGAN_HAVE_NCCL)
  message(STATUS "distgan: the Debian package will need NCCL and the CUDA runtime from outside Debian "
                 "(found in ${NCCL_LIBRARY}); -DDISTGAN_DEB_EXTRA_DEPENDS=... names their packages, "
                 "-DDISTGAN_WITH_NCCL=OFF builds a package of Debian packages only")
endif()
list(JOIN distgan_deb_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME distgan)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${DISTGAN_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "distributed GAN training with LibTorch and MPI")
# CPack puts the summary first and indents these lines as Debian's long description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "distgan trains GANs on N MPI ranks (mpirun or Slurm's srun) that average
their gradients every step, from HDF5 datasets and YAML configs, with checkpoints, resume and
preemption. The package holds the distgan executable, Slurm job scripts and example configs
(/usr/share/distgan), the documentation and a modulefile (/usr/share/modulefiles).")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# With DESTDIR, the install step sees the final prefix (/usr) while the files go to CPack's staging
# directory: cmake/DistganInstall.cmake writes that prefix into the job scripts and the modulefile.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# cpack (and the `package`/`install` targets) install what is built without building `all` first:
# the package holds the tree that was built and tested, and the install_deb test, which runs cpack,
# never starts a build. Build first: `cmake --build build && cpack -G DEB`.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
# `package_source` would otherwise also pack build trees, data sets and runs.
set(CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/datasets/" "/runs/" "/\\\\.gpu/")
include(CPack)
