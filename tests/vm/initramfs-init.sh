#!/bin/busybox sh
# /init of the vfmig test guest's initramfs (busybox only).
#
# Mounts the host's root (9p tag "hostroot", read-only) at /newroot and the
# writable results export (tag "vfmout") at /newroot/run/vfm-out, puts tmpfs
# where the guest must write, moves /dev /proc /sys, and switch_roots into
# the program named by VFM_MAIN in /newroot/run/vfm-out/guest.env.
#
# Host paths under a tmpfs'd directory that the guest must still see (a
# build directory in /tmp, say) are listed in VFM_KEEP (space separated) and
# bound back through from the host's copy.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
	echo "vfm-init: $*"
	echo "vfm-init: cannot continue; powering off"
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
}

mkdir -p /proc /sys /dev /newroot /hostdirs
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
echo 1 >/proc/sys/kernel/printk_ratelimit 2>/dev/null

for m in netfs 9pnet 9pnet_virtio 9p; do
	insmod /modules/$m.ko || fail "insmod $m failed"
done

mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro \
	hostroot /newroot || fail "cannot mount the host root (9p tag hostroot)"

# Writable directories. Bind the host's copy aside first so that VFM_KEEP
# paths inside them can be bound back.
tmpdirs="/run /tmp /var/tmp /var/log /root"
for d in $tmpdirs; do
	[ -d /newroot$d ] || continue
	mkdir -p /hostdirs$d
	mount --bind /newroot$d /hostdirs$d
	mount -t tmpfs -o mode=1777,size=50% tmpfs /newroot$d
done
chmod 0755 /newroot/run /newroot/root 2>/dev/null

mkdir -p /newroot/run/vfm-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none \
	vfmout /newroot/run/vfm-out || fail "cannot mount the results export (9p tag vfmout)"
[ -r /newroot/run/vfm-out/guest.env ] || fail "guest.env missing on the results export"
. /newroot/run/vfm-out/guest.env

for p in $VFM_KEEP; do
	for d in $tmpdirs; do
		case "$p" in
		"$d"/*)
			rel=${p#"$d"/}
			if [ -d "/hostdirs$d/$rel" ]; then
				mkdir -p "/newroot$p"
			else
				mkdir -p "/newroot$(dirname "$p")"
				: >"/newroot$p"
			fi
			mount --bind "/hostdirs$d/$rel" "/newroot$p" ||
				echo "vfm-init: cannot bind $p through"
			;;
		esac
	done
done
for d in $tmpdirs; do
	umount -l /hostdirs$d 2>/dev/null
done

mkdir -p /newroot/run/lock /newroot/run/shm
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o mode=0620,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
ln -sf /proc/self/fd /newroot/dev/fd
ln -sf /proc/self/fd/0 /newroot/dev/stdin
ln -sf /proc/self/fd/1 /newroot/dev/stdout
ln -sf /proc/self/fd/2 /newroot/dev/stderr

[ -n "$VFM_MAIN" ] || fail "VFM_MAIN not set in guest.env"
exec switch_root /newroot /bin/bash "$VFM_MAIN"
