#!/bin/sh
# `make image`: the agent's OCI image, built here without any image registry:
# a minimal Debian root filesystem made by debootstrap from Debian's packages (the apt
# mirror), python3 + a virtualenv with the syshub wheel (and its agent/k8s extras from the
# package index, fetched by the host's pip), assembled by umoci into an OCI layout and an OCI archive that
# `ctr images import` / `podman load` read.
#
#   deploy/image/build.sh VERSION WHEEL OUTDIR
# -> OUTDIR/oci (layout, tag VERSION) and OUTDIR/syshub-VERSION.oci.tar
# Needs root, debootstrap and umoci. The debootstrap result is cached in OUTDIR.
set -eu
VERSION=$1
WHEEL=$2
OUT=$3
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
ROOTFS=$OUT/rootfs
CACHE=$OUT/debootstrap-$SUITE.tar

mkdir -p "$OUT"
rm -rf "$ROOTFS" "$OUT/bundle" "$OUT/oci"
mkdir -p "$ROOTFS"
if [ ! -f "$CACHE" ]; then
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
		"$SUITE" "$ROOTFS" "$MIRROR"
	tar -C "$ROOTFS" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
	rm -rf "$ROOTFS" && mkdir -p "$ROOTFS"
fi
tar -C "$ROOTFS" -xf "$CACHE"

# the wheel and its dependencies in /opt/syshub: the dependencies are downloaded by the
# host's pip (its index and certificates), then installed offline in the root filesystem
name=$(basename "$WHEEL")
rm -rf "$ROOTFS/tmp/wheels" && mkdir -p "$ROOTFS/tmp/wheels"
cp "$WHEEL" "$ROOTFS/tmp/wheels/"
"${PYTHON:-python3}" -m pip download -q --disable-pip-version-check --only-binary=:all: \
	-d "$ROOTFS/tmp/wheels" "$WHEEL[agent,k8s]"
chroot "$ROOTFS" python3 -m venv /opt/syshub
env -u PIP_FIND_LINKS chroot "$ROOTFS" /opt/syshub/bin/pip install -q --no-index --find-links /tmp/wheels \
	--disable-pip-version-check "/tmp/wheels/$name[agent,k8s]"
chroot "$ROOTFS" /opt/syshub/bin/syshub --version | grep -qx "syshub $VERSION"
rm -rf "$ROOTFS/tmp/wheels"
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log

# OCI layout: one layer with the root filesystem, the agent as entrypoint
umoci init --layout "$OUT/oci"
umoci new --image "$OUT/oci:$VERSION"
umoci unpack --image "$OUT/oci:$VERSION" "$OUT/bundle"
tar -C "$ROOTFS" -cf - . | tar -C "$OUT/bundle/rootfs" -xf -
umoci repack --image "$OUT/oci:$VERSION" "$OUT/bundle"
umoci config --image "$OUT/oci:$VERSION" \
	--author "syshub" \
	--config.entrypoint /opt/syshub/bin/syshub \
	--config.cmd agent \
	--config.env PATH=/opt/syshub/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.env PYTHONUNBUFFERED=1 \
	--config.label "org.opencontainers.image.version=$VERSION" \
	--config.label "org.opencontainers.image.title=syshub"
umoci gc --layout "$OUT/oci"
rm -rf "$OUT/bundle" "$ROOTFS"
tar -C "$OUT/oci" -cf "$OUT/syshub-$VERSION.oci.tar" .
echo "image: $OUT/syshub-$VERSION.oci.tar (syshub:$VERSION)"
