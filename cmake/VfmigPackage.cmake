# Debian packages with CPack, one per install component:
#   vfmig        the agent, the benchmark, units, udev/modprobe files,
#                vfmig-bind, the libvirt hook, man page, bash completion
#   vfmig-dkms   the module's sources for DKMS (postinst builds it for every
#                installed kernel with headers)
# Configure for the system prefix, build, then package:
#   cmake -S . -B build/pkg -DCMAKE_INSTALL_PREFIX=/usr -DVFM_KERNEL=OFF
#   cmake --build build/pkg --target vfmig vfmig-bench
#   (cd build/pkg && cpack)      -> vfmig_<ver>_amd64.deb, vfmig-dkms_<ver>_all.deb
# The units, the hook and the udev rule name the configured prefix's paths,
# so a package is built from a /usr build (tests/deploy/test_packages.sh).
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "cpack: the install prefix is ${CMAKE_INSTALL_PREFIX}; Debian packages want -DCMAKE_INSTALL_PREFIX=/usr")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vfmig)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "vfmig")
set(CPACK_PACKAGE_CONTACT "vfmig maintainers <vfmig-maintainers@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL vfmig dkms)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)

set(_deb ${CMAKE_BINARY_DIR}/deploy/debian)
# Each package's /usr/share/doc/<package>/{copyright,changelog.gz}.
configure_file(${CMAKE_SOURCE_DIR}/deploy/debian/changelog.in ${_deb}/changelog @ONLY)
add_custom_command(OUTPUT ${_deb}/changelog.gz
                   COMMAND gzip -9nc ${_deb}/changelog > ${_deb}/changelog.gz
                   DEPENDS ${_deb}/changelog)
add_custom_target(vfmig_changelog ALL DEPENDS ${_deb}/changelog.gz)
foreach(_c vfmig dkms)
  set(_pkg vfmig)
  if(_c STREQUAL dkms)
    set(_pkg vfmig-dkms)
  endif()
  install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/copyright ${_deb}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_pkg} COMPONENT ${_c})
endforeach()
foreach(_s dkms-postinst dkms-prerm vfmig-postinst)
  configure_file(${CMAKE_SOURCE_DIR}/deploy/debian/${_s}.in ${_deb}/${_s} @ONLY)
endforeach()
# Maintainer scripts must be named postinst/prerm in the control archive.
file(MAKE_DIRECTORY ${_deb}/vfmig ${_deb}/dkms)
file(COPY_FILE ${_deb}/vfmig-postinst ${_deb}/vfmig/postinst)
file(COPY_FILE ${_deb}/dkms-postinst ${_deb}/dkms/postinst)
file(COPY_FILE ${_deb}/dkms-prerm ${_deb}/dkms/prerm)
file(CHMOD ${_deb}/vfmig/postinst ${_deb}/dkms/postinst ${_deb}/dkms/prerm
     PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                 WORLD_READ WORLD_EXECUTE)
# Files under /etc are the administrator's: conffiles.
file(WRITE ${_deb}/vfmig/conffiles "")
foreach(_f ${VFM_LIBVIRT_HOOKDIR}/vfmig ${VFM_UDEV_RULESDIR}/90-vfmig-bind.rules
        ${VFM_MODPROBEDIR}/vfmig.conf)
  if(_f MATCHES "^/etc/")
    file(APPEND ${_deb}/vfmig/conffiles "${_f}\n")
  endif()
endforeach()

set(CPACK_DEBIAN_VFMIG_PACKAGE_NAME vfmig)
set(CPACK_DEBIAN_VFMIG_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_VFMIG_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_VFMIG_PACKAGE_DEPENDS "libxml2-utils")
set(CPACK_DEBIAN_VFMIG_PACKAGE_RECOMMENDS "vfmig-dkms, driverctl")
set(CPACK_DEBIAN_VFMIG_PACKAGE_SUGGESTS "libvirt-daemon-system")
set(CPACK_DEBIAN_VFMIG_PACKAGE_CONTROL_EXTRA
    ${_deb}/vfmig/postinst ${_deb}/vfmig/conffiles)
set(CPACK_DEBIAN_VFMIG_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_VFMIG_DESCRIPTION
    "live migration of VFIO-assigned PCI device state\n\
vfmig checks, before anything is stopped, that a destination device can\n\
accept a source device's state, then moves it in pre-copy iterations over\n\
io_uring TCP or RDMA. This package holds the agent, the benchmark, systemd\n\
units (one instance per migration), udev binding and a libvirt hook that\n\
refuses incompatible migrations.")

set(CPACK_DEBIAN_DKMS_PACKAGE_NAME vfmig-dkms)
set(CPACK_DEBIAN_DKMS_PACKAGE_SECTION kernel)
set(CPACK_DEBIAN_DKMS_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DKMS_PACKAGE_DEPENDS "dkms (>= 3)")
set(CPACK_DEBIAN_DKMS_PACKAGE_CONTROL_EXTRA ${_deb}/dkms/postinst ${_deb}/dkms/prerm)
set(CPACK_DEBIAN_DKMS_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_DKMS_DESCRIPTION
    "vfmig_stub kernel module sources for DKMS\n\
vfmig_stub is a vfio-pci variant driver (Linux 6.12+) that gives a PCI\n\
function a migratable state through the VFIO migration uAPI v2. DKMS builds\n\
it for every installed kernel.")

include(CPack)
