#!/bin/sh
# Install the Debian packages given as arguments when any is missing.
# As root this runs apt-get; otherwise it prints the exact line to run.
# PostgreSQL refuses to run as root, so as root it runs as an unprivileged
# user. That user must be able to traverse "/": a root directory of mode
# 0700 (seen in chroots made with mktemp -d) locks every such user out.
if [ "$(id -u)" = 0 ] && [ "$(stat -c %a /)" = 700 ]; then
	echo "note: / is mode 700, which keeps the unprivileged PostgreSQL user out; setting it to 755" >&2
	chmod 755 /
fi

# An argument is a Debian package, or COMMAND=PACKAGE: the package is
# needed only when the command is missing (node and npm may come from
# elsewhere, e.g. NodeSource's nodejs bundles npm).
missing=""
for p in "$@"; do
	case $p in
	*=*)
		command -v "${p%%=*}" >/dev/null 2>&1 || missing="$missing ${p#*=}"
		;;
	*)
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
		;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "sluice needs these Debian packages:$missing" >&2
	echo "run: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null &&
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
	{ echo "apt-get install failed for:$missing" >&2; exit 1; }
