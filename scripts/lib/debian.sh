# shellcheck shell=bash
# Debian package helpers: system packages, and a private apt configuration
# that reaches a suite the machine does not list (for the kernel source and
# rust-src) without touching the system's sources.

# The machine's own Debian mirror, read from its apt sources (deb822 files
# first, then the one-line format).
debian_mirror() {
	local uri
	uri=$(awk '
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) ok = 1 }
		/^$/ { if (ok && uri != "" && uri !~ /security/) { print uri; exit } ok = 0; uri = "" }
		END { if (ok && uri != "" && uri !~ /security/) print uri }
	' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "cannot find a Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" \
		"add the machine's Debian source, or set LOFI_DEBIAN_MIRROR"
	echo "${uri%/}"
}

# Install the Debian packages listed in DEBIAN_PACKAGES that are missing.
ensure_debian_packages() {
	local missing=() p
	for p in $DEBIAN_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	log "installing Debian packages: ${missing[*]}"
	run_logged "$LOFI_CACHE/logs/apt-update.log" as_root apt-get update ||
		die "apt-get update failed" "check the machine's apt sources and network"
	run_logged "$LOFI_CACHE/logs/apt-install.log" as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed" "see the log above; install them by hand and rerun"
}

PRIVATE_APT_DIR=$LOFI_CACHE/apt-$DEBIAN_EXTRA_SUITE

# private_apt ARGS...: apt-get/apt-cache with only the extra suite's sources.
private_apt_opts() {
	echo "-o Dir::Etc::SourceList=$PRIVATE_APT_DIR/sources.list" \
		"-o Dir::Etc::SourceParts=/dev/null" \
		"-o Dir::State::Lists=$PRIVATE_APT_DIR/lists" \
		"-o Dir::Cache=$PRIVATE_APT_DIR/cache" \
		"-o Debug::NoLocking=1"
}

# Fetch the package lists of the extra suite into the private apt directory
# (once: later calls reuse them; LOFI_APT_REFRESH=1 fetches again).
private_apt_update() {
	local mirror
	if [ -f "$PRIVATE_APT_DIR/updated" ] && [ "${LOFI_APT_REFRESH:-0}" != 1 ]; then
		return 0
	fi
	mirror=${LOFI_DEBIAN_MIRROR:-$(debian_mirror)}
	mkdir -p "$PRIVATE_APT_DIR/lists/partial" "$PRIVATE_APT_DIR/cache/archives/partial"
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$mirror" "$DEBIAN_EXTRA_SUITE" >"$PRIVATE_APT_DIR/sources.list"
	log "fetching the $DEBIAN_EXTRA_SUITE package lists from the machine's mirror"
	# shellcheck disable=SC2046
	run_logged "$LOFI_CACHE/logs/apt-private-update.log" apt-get $(private_apt_opts) update ||
		die "could not read $DEBIAN_EXTRA_SUITE from $mirror" \
			"check that the mirror carries $DEBIAN_EXTRA_SUITE, or set LOFI_DEBIAN_MIRROR"
	touch "$PRIVATE_APT_DIR/updated"
}

# private_apt_versions PKG: the versions of PKG the extra suite offers.
private_apt_versions() {
	# shellcheck disable=SC2046
	apt-cache $(private_apt_opts) madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}'
}

# private_apt_download PKG=VERSION DIR: download one .deb into DIR, print its path.
private_apt_download() {
	local spec=$1 dir=$2 before
	mkdir -p "$dir"
	before=$(ls "$dir")
	# shellcheck disable=SC2046
	(cd "$dir" && run_logged "$LOFI_CACHE/logs/apt-download.log" apt-get $(private_apt_opts) download "$spec") ||
		die "could not download $spec from $DEBIAN_EXTRA_SUITE" "rerun with LOFI_APT_REFRESH=1 to refresh the package lists"
	comm -13 <(echo "$before") <(ls "$dir") | head -n 1 | sed "s|^|$dir/|"
}
