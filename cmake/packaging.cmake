# The Debian package: `cpack -G DEB` in a build directory (tests/packaging/verify.sh does it and
# checks the result). Binaries go to /usr/bin, units to /usr/lib/systemd/system, the default
# config to /etc/ebb/ebbd.toml (a conffile: an operator's edits survive upgrades), docs to
# /usr/share/doc/ebb. Only the programs that exist in this tree are packaged.
include(GNUInstallDirs)

foreach(program ebbd ebbctl ebb-manager ebb-sim)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

set(EBB_SYSTEMD_UNIT_DIR lib/systemd/system)
install(FILES scripts/ebbd.service DESTINATION ${EBB_SYSTEMD_UNIT_DIR})
if(TARGET ebb-manager)
  install(FILES scripts/ebb-manager.service DESTINATION ${EBB_SYSTEMD_UNIT_DIR})
endif()
install(FILES scripts/ebbd.toml DESTINATION /etc/ebb)
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ebb)
set(CPACK_PACKAGE_VENDOR "ebb")
set(CPACK_PACKAGE_CONTACT "ebb maintainers <ebb@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sub-second CPU and memory limits for cgroup v2 containers")
set(CPACK_PACKAGE_DESCRIPTION
    "ebbd keeps every container's CPU and memory limits just above what it needs, using an online learner and eBPF probes on cgroup v2.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "file:///usr/share/doc/ebb/README.md")
# Library dependencies (gRPC, protobuf, libbpf, ...) are read from the binaries by dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/debian/conffiles
    ${PROJECT_SOURCE_DIR}/cmake/debian/postinst
    ${PROJECT_SOURCE_DIR}/cmake/debian/prerm
    ${PROJECT_SOURCE_DIR}/cmake/debian/postrm)
include(CPack)
