# `cmake --install`: what goes where, in two components that become the two
# Debian packages (cmake/VfmigPackage.cmake):
#   vfmig  the agent, the benchmark, units, udev/modprobe files, libvirt hook
#   dkms   the module's sources and dkms.conf in /usr/src/vfmig-<version>/
#
# Paths follow the install prefix. The system-integration folders depend on
# it too: for /usr they are the distribution's (/lib/systemd/system, ...),
# for any other prefix the ones the tools also read (/usr/local/lib/systemd/
# system is in systemd's search path; udev and modprobe read /etc). libvirt
# reads hooks only from /etc/libvirt/hooks.
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_unitdir /lib/systemd/system)
  set(_udevdir /lib/udev/rules.d)
  set(_modprobedir /lib/modprobe.d)
else()
  set(_unitdir ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
  set(_udevdir /etc/udev/rules.d)
  set(_modprobedir /etc/modprobe.d)
endif()
set(VFM_SYSTEMD_UNITDIR ${_unitdir} CACHE PATH "systemd system unit folder")
set(VFM_UDEV_RULESDIR ${_udevdir} CACHE PATH "udev rules folder")
set(VFM_MODPROBEDIR ${_modprobedir} CACHE PATH "modprobe.d folder")
set(VFM_LIBVIRT_HOOKDIR /etc/libvirt/hooks/qemu.d CACHE PATH "libvirt qemu hook folder")
set(VFM_DKMS_SRCDIR /usr/src/vfmig-${PROJECT_VERSION})

# Paths the configured files name (absolute, from the prefix).
set(VFM_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(VFM_LIBEXECDIR ${CMAKE_INSTALL_FULL_LIBEXECDIR}/vfmig)
set(VFM_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
set(_cfg ${CMAKE_BINARY_DIR}/deploy)

if(TARGET vfmig)
  install(TARGETS vfmig RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT vfmig)
endif()
if(TARGET vfmig-bench)
  install(TARGETS vfmig-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT vfmig)
endif()
install(FILES deploy/modprobe.d/vfmig.conf DESTINATION ${VFM_MODPROBEDIR} COMPONENT vfmig)
install(PROGRAMS deploy/orchestrate.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/vfmig
        RENAME vfmig-orchestrate-example COMPONENT vfmig)

# DKMS source tree: /usr/src/vfmig-<version>/{dkms.conf,Kbuild,*.c,*.h,include/uapi/}
configure_file(deploy/dkms/dkms.conf ${_cfg}/dkms.conf @ONLY)
install(FILES ${_cfg}/dkms.conf DESTINATION ${VFM_DKMS_SRCDIR} COMPONENT dkms)
file(GLOB _vfm_ksrc ${CMAKE_SOURCE_DIR}/kernel/*.c ${CMAKE_SOURCE_DIR}/kernel/*.h)
list(FILTER _vfm_ksrc EXCLUDE REGEX "\\.mod\\.c$")
install(FILES ${_vfm_ksrc} kernel/Kbuild kernel/Makefile
        DESTINATION ${VFM_DKMS_SRCDIR} COMPONENT dkms)
install(FILES kernel/include/uapi/vfmig.h
        DESTINATION ${VFM_DKMS_SRCDIR}/include/uapi COMPONENT dkms)

# systemd template units (instance = migration id), sandbox pasted in.
file(READ deploy/systemd/sandbox.conf.in VFM_UNIT_SANDBOX)
string(STRIP "${VFM_UNIT_SANDBOX}" VFM_UNIT_SANDBOX)
foreach(_u vfmig-recv@.service vfmig-send@.service)
  configure_file(deploy/systemd/${_u}.in ${_cfg}/systemd/${_u} @ONLY)
  install(FILES ${_cfg}/systemd/${_u} DESTINATION ${VFM_SYSTEMD_UNITDIR} COMPONENT vfmig)
endforeach()

# Binding: the udev rule runs vfmig-bind (driver_override, unbind, probe).
configure_file(deploy/udev/90-vfmig-bind.rules.in ${_cfg}/90-vfmig-bind.rules @ONLY)
install(FILES ${_cfg}/90-vfmig-bind.rules DESTINATION ${VFM_UDEV_RULESDIR} COMPONENT vfmig)
install(PROGRAMS deploy/bin/vfmig-bind DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/vfmig
        COMPONENT vfmig)
install(FILES deploy/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME README.deploy.md
        COMPONENT vfmig)

# The libvirt hook: libvirtd runs every executable in qemu.d/.
configure_file(deploy/libvirt/qemu-hook.in ${_cfg}/libvirt-qemu-hook @ONLY)
install(PROGRAMS ${_cfg}/libvirt-qemu-hook DESTINATION ${VFM_LIBVIRT_HOOKDIR} RENAME vfmig
        COMPONENT vfmig)

# Manual pages (gzip -n: reproducible), bash completion.
foreach(_m vfmig.1 vfmig-bench.1)
  set(_gz ${_cfg}/man/${_m}.gz)
  file(MAKE_DIRECTORY ${_cfg}/man)
  add_custom_command(OUTPUT ${_gz}
                     COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/deploy/man/${_m} > ${_gz}
                     DEPENDS ${CMAKE_SOURCE_DIR}/deploy/man/${_m})
  list(APPEND _vfm_man ${_gz})
  install(FILES ${_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT vfmig)
endforeach()
add_custom_target(vfmig_man ALL DEPENDS ${_vfm_man})
install(FILES deploy/bash-completion/vfmig
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT vfmig)
