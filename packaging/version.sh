#!/bin/sh
# version.sh VERSION prints VERSION (from "git describe --tags --always
# --dirty") as a version that both dpkg and rpm accept and order sensibly:
#   v1.2.3             -> 1.2.3
#   v1.2.3-4-gabc1234  -> 1.2.3+git4.abc1234    (after 1.2.3)
#   v1.2.3-rc1         -> 1.2.3~rc1             (before 1.2.3)
#   abc1234 (no tag)   -> 0.0.0~gitabc1234      (before any release)
#   ...-dirty          -> ...+dirty or ...dirty appended with "."
#   dev                -> 0.0.0~dev
set -eu
v=${1:-dev}
case $v in v[0-9]*) v=${v#v} ;; esac
dirty=
case $v in *-dirty) dirty=1 v=${v%-dirty} ;; esac
if printf '%s\n' "$v" | grep -Eq '^[0-9a-f]{7,40}$'; then
	v="0.0.0~git$v"
else
	v=$(printf '%s\n' "$v" | sed -E -e 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/' -e 's/-/~/g' -e 's/[^A-Za-z0-9.+~]/./g')
	case $v in [0-9]*) ;; *) v="0.0.0~$v" ;; esac
fi
if [ -n "$dirty" ]; then
	case $v in *+*) v="$v.dirty" ;; *) v="$v+dirty" ;; esac
fi
printf '%s\n' "$v"
