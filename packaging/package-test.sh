#!/bin/sh
# package-test.sh DEB VERSION
#
# Installs the .deb with dpkg, checks that the installed punchdrop runs
# (--version says VERSION, --help, completion of subcommands) and that the
# man pages, user unit, desktop entries, icons, completions, license and
# third-party notices are where they belong, then removes the package
# again (also on failure). If an .rpm sits next to the .deb and rpm(8) is
# here, its version, license and file list are checked too. Run by "make
# package-test"; needs root. It refuses to run over a punchdrop that is
# already installed.
set -eu

deb=$1
version=$2
repo=$(dirname "$0")/..
rpm_file=$(ls "$(dirname "$deb")"/punchdrop-*.rpm 2>/dev/null | head -n 1 || true)

say() { printf 'package-test: %s\n' "$*"; }
fail() {
	printf 'package-test: FAIL: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
[ -f "$deb" ] || fail "no $deb (make package)"
if dpkg-query -W -f '${Status}' punchdrop 2>/dev/null | grep -q 'install ok installed'; then
	fail "punchdrop is already installed here; not touching it"
fi

installed=
cleanup() {
	if [ -n "$installed" ]; then
		dpkg -r punchdrop >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

say "dpkg -i $deb ($(du -h "$deb" | cut -f1))"
installed=1
dpkg -i "$deb" >/dev/null

pd=/usr/bin/punchdrop
[ -x $pd ] || fail "$pd is not installed"
got=$($pd --version)
[ "$got" = "punchdrop version $version" ] || fail "$pd --version says '$got', want 'punchdrop version $version'"
say "$pd --version: $got"
$pd --help | grep -q 'punchdrop agent' || fail "$pd --help does not explain the agent"
$pd __complete pe 2>/dev/null | grep -q '^peers' || fail "$pd does not complete 'pe' to 'peers'"

# dpkg may be told to leave documentation out (path-exclude in
# /etc/dpkg/dpkg.cfg.d, as in slim Docker images); check what was installed
# and the package's own list for the rest.
listed() { dpkg -L punchdrop | grep -qx "$1"; }
check_file() {
	listed "$1" || fail "the package does not install $1"
	if [ -e "$1" ]; then
		return 0
	fi
	grep -rqs "^path-exclude" /etc/dpkg/dpkg.cfg.d/ || fail "$1 is listed but missing"
	say "note: $1 is excluded by dpkg's path-exclude here"
	return 1
}

man1=/usr/share/man/man1
for page in punchdrop punchdrop-agent punchdrop-send punchdrop-peers-remove; do
	if check_file $man1/$page.1.gz; then
		gzip -dc $man1/$page.1.gz | grep -q '^\.TH ' || fail "$man1/$page.1.gz is not a man page"
		gzip -dc $man1/$page.1.gz | grep -q '^\.SH COPYRIGHT' || fail "$man1/$page.1.gz has no COPYRIGHT section"
	fi
done
if [ -e $man1/punchdrop.1.gz ] && command -v man >/dev/null; then
	[ "$(man -w punchdrop-agent)" = $man1/punchdrop-agent.1.gz ] || fail "man does not find punchdrop-agent"
	MANWIDTH=200 man punchdrop 2>/dev/null | grep -q 'punchdrop - Send files' || fail "man punchdrop does not show the page"
fi

for f in \
	/usr/lib/systemd/user/punchdrop.service \
	/usr/share/applications/punchdrop.desktop \
	/usr/share/punchdrop/punchdrop-autostart.desktop \
	/usr/share/icons/hicolor/scalable/apps/punchdrop.svg \
	/usr/share/icons/hicolor/16x16/apps/punchdrop.png \
	/usr/share/icons/hicolor/256x256/apps/punchdrop.png \
	/usr/share/bash-completion/completions/punchdrop \
	/usr/share/zsh/vendor-completions/_punchdrop \
	/usr/share/fish/vendor_completions.d/punchdrop.fish; do
	check_file $f || true
done
# The license as Debian keeps it, and the notices for the modules built in:
# every module the installed binary names (go version -m) must be listed.
doc=/usr/share/doc/punchdrop
notices=$repo/packaging/notices/THIRD_PARTY_NOTICES
if check_file $doc/copyright; then
	cmp -s $doc/copyright "$repo/LICENSE" || fail "$doc/copyright is not LICENSE"
fi
if check_file $doc/THIRD_PARTY_NOTICES; then
	cmp -s $doc/THIRD_PARTY_NOTICES "$notices" || fail "$doc/THIRD_PARTY_NOTICES is not $notices"
	if command -v go >/dev/null; then
		n=0
		for mod in $(go version -m $pd | awk '$1 == "dep" { print $2 "@" $3 }'); do
			# a line of the list: module, version, license
			awk -v m="${mod%@*}" -v v="${mod#*@}" '$1 == m && $2 == v { found = 1 } END { exit !found }' \
				$doc/THIRD_PARTY_NOTICES ||
				fail "$doc/THIRD_PARTY_NOTICES does not list $mod, which $pd is built with"
			n=$((n + 1))
		done
		[ $n -gt 0 ] || fail "go version -m $pd names no modules"
		say "$doc/THIRD_PARTY_NOTICES lists all $n modules in $pd"
	fi
fi

bash -c '. /usr/share/bash-completion/completions/punchdrop && complete -p punchdrop' >/dev/null ||
	fail "the bash completion does not register for punchdrop"

if command -v systemd-analyze >/dev/null; then
	rt=$(mktemp -d)
	out=$(XDG_RUNTIME_DIR=$rt systemd-analyze --user verify /usr/lib/systemd/user/punchdrop.service 2>&1) || true
	rm -rf "$rt"
	# verify also runs "man punchdrop-agent" for Documentation=, which
	# cannot pass when dpkg left the man pages out.
	if [ ! -e $man1/punchdrop-agent.1.gz ]; then
		out=$(printf '%s\n' "$out" | grep -v "Command 'man " || true)
	fi
	[ -z "$out" ] || fail "systemd-analyze --user verify punchdrop.service: $out"
	say "systemd-analyze --user verify punchdrop.service: ok"
fi
if command -v desktop-file-validate >/dev/null; then
	desktop-file-validate /usr/share/applications/punchdrop.desktop /usr/share/punchdrop/punchdrop-autostart.desktop ||
		fail "desktop-file-validate"
fi

say "dpkg installed $(dpkg -L punchdrop | while read -r p; do [ ! -f "$p" ] || echo "$p"; done | wc -l) files:"
dpkg -L punchdrop | while read -r p; do [ ! -f "$p" ] || echo "  $p"; done

dpkg -r punchdrop >/dev/null
installed=
[ ! -e $pd ] || fail "$pd is still there after dpkg -r"
[ ! -e /usr/lib/systemd/user/punchdrop.service ] || fail "the unit is still there after dpkg -r"
say "dpkg -r punchdrop: removed"

if [ -n "$rpm_file" ] && command -v rpm >/dev/null; then
	deb_version=$(dpkg-deb -f "$deb" Version)
	rpm_version=$(rpm -qp --qf '%{VERSION}' "$rpm_file" 2>/dev/null)
	[ "$rpm_version" = "$deb_version" ] || fail "$rpm_file has version $rpm_version, the .deb $deb_version"
	rpm_license=$(rpm -qp --qf '%{LICENSE}' "$rpm_file" 2>/dev/null)
	[ "$rpm_license" = MIT ] || fail "$rpm_file says license '$rpm_license', want MIT"
	# %license files: rpm installs them even with --excludedocs.
	for f in /usr/share/licenses/punchdrop/LICENSE /usr/share/licenses/punchdrop/THIRD_PARTY_NOTICES; do
		rpm -qp --licensefiles "$rpm_file" 2>/dev/null | grep -qx "$f" || fail "$rpm_file lacks $f as a %license file"
	done
	rpm -qpl "$rpm_file" 2>/dev/null >"${TMPDIR:-/tmp}/punchdrop-rpm-files.$$"
	for f in /usr/bin/punchdrop /usr/lib/systemd/user/punchdrop.service $man1/punchdrop.1.gz \
		/usr/share/zsh/site-functions/_punchdrop /usr/share/icons/hicolor/48x48/apps/punchdrop.png; do
		grep -qx "$f" "${TMPDIR:-/tmp}/punchdrop-rpm-files.$$" || fail "$rpm_file lacks $f"
	done
	rm -f "${TMPDIR:-/tmp}/punchdrop-rpm-files.$$"
	say "$rpm_file: version $rpm_version, $(rpm -qpl "$rpm_file" 2>/dev/null | wc -l) files"
fi
say ok
