# What `cmake --install` puts beside bin/distgan (launcher/ installs the executable): the Slurm job
# scripts and example configs in share/distgan/, the documentation in share/doc/distgan/ and an
# Environment Modules / Lmod modulefile in share/modulefiles/distgan/<version>.

set(DISTGAN_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/distgan)
set(DISTGAN_INSTALL_MODULEDIR ${CMAKE_INSTALL_DATADIR}/modulefiles/distgan)
file(GLOB distgan_job_scripts CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cluster/slurm/*.sbatch)
file(GLOB distgan_configs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/configs/*.yaml)
file(GLOB distgan_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)

install(PROGRAMS ${distgan_job_scripts} DESTINATION ${DISTGAN_INSTALL_DATADIR}/slurm)
install(FILES ${distgan_configs} DESTINATION ${DISTGAN_INSTALL_DATADIR}/configs)
# docs/ stays a subfolder of README.md's, so the links between them still work.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${distgan_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)

# @DISTGAN_PREFIX@ and @DISTGAN_BINDIR@ pass through configure_file: the prefix is known at install time.
set(DISTGAN_PREFIX @DISTGAN_PREFIX@)
set(DISTGAN_BINDIR @DISTGAN_BINDIR@)
configure_file(${PROJECT_SOURCE_DIR}/cluster/distgan.modulefile.in ${PROJECT_BINARY_DIR}/distgan.modulefile @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/distgan.modulefile DESTINATION ${DISTGAN_INSTALL_MODULEDIR}
        RENAME ${PROJECT_VERSION})

# The installed job scripts and modulefile name the installed executable. Its path is known only at
# install time (`cmake --install --prefix` and CPack choose the prefix then), so the files are
# installed with placeholders that this step replaces in the installed copies: @DISTGAN_PREFIX@
# becomes the prefix, @DISTGAN_BINDIR@ the full bin directory. The files are under $DESTDIR (a
# staged install, CPack) but name the prefix, where they will be used.
set(distgan_prefixed_files ${DISTGAN_INSTALL_MODULEDIR}/${PROJECT_VERSION})
foreach(script IN LISTS distgan_job_scripts)
  get_filename_component(name ${script} NAME)
  list(APPEND distgan_prefixed_files ${DISTGAN_INSTALL_DATADIR}/slurm/${name})
endforeach()
install(CODE "set(distgan_bindir \"${CMAKE_INSTALL_BINDIR}\")\nset(distgan_prefixed_files \"${distgan_prefixed_files}\")")
install(CODE [[
  set(distgan_full_bindir "${distgan_bindir}")
  if(NOT IS_ABSOLUTE "${distgan_bindir}")
    set(distgan_full_bindir "${CMAKE_INSTALL_PREFIX}/${distgan_bindir}")
  endif()
  foreach(file IN LISTS distgan_prefixed_files)
    if(NOT IS_ABSOLUTE "${file}")
      set(file "${CMAKE_INSTALL_PREFIX}/${file}")
    endif()
    set(file "$ENV{DESTDIR}${file}")
    message(STATUS "Naming the install prefix in: ${file}")
    file(READ "${file}" text)
    string(REPLACE "@DISTGAN_PREFIX@" "${CMAKE_INSTALL_PREFIX}" text "${text}")
    string(REPLACE "@DISTGAN_BINDIR@" "${distgan_full_bindir}" text "${text}")
    file(WRITE "${file}" "${text}")
  endforeach()
]])
