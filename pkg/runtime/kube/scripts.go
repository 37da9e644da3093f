package kube

// The shell scripts ephem runs in a helper debugger, for sh of busybox or
// a Debian image. Each starts with scriptPrelude, which takes the target
// container's ID (or "") as $1 and finds the target's first process, and
// reports what went wrong with one line on stderr and one of the script
// exit codes (helperdebugger.go).

// scriptPrelude sets pid to the target's first process and R to its root:
// PID 1 of the PID namespace the helper shares with the target, or, where
// the pod shares one PID namespace among all its containers (PID 1 is the
// pause process there), the lowest PID whose cgroup names the target's
// container ID. resolve P prints the absolute path P inside R with every
// symbolic link resolved inside R (an absolute link from R, ".." never
// above R), as filepath-securejoin does: the kernel then walks no link.
const scriptPrelude = scriptFindTarget + scriptResolve

// scriptFindTarget sets pid and R (see scriptPrelude).
const scriptFindTarget = `cid=$1
shift
pid=1
if [ -n "$cid" ]; then
	pid=$(grep -l -- "$cid" /proc/[0-9]*/cgroup 2>/dev/null | sed -n 's,^/proc/\([0-9]*\)/cgroup$,\1,p' | sort -n | head -n 1)
	[ -n "$pid" ] || { echo "no process of the target container is left" >&2; exit 75; }
fi
R=/proc/$pid/root
if [ ! -d "$R/" ]; then
	[ -d "/proc/$pid" ] || { echo "the target container exited" >&2; exit 75; }
	echo "the helper debug container may not read the target's root ($R): the target holds capabilities it lacks, or runs as another user" >&2
	exit 77
fi
`

// scriptResolve defines resolve (see scriptPrelude); R is the root.
const scriptResolve = `resolve() {
	todo=${1#/} out= n=0
	while [ -n "$todo" ]; do
		c=${todo%%/*}
		case $todo in */*) todo=${todo#*/} ;; *) todo= ;; esac
		case $c in
		'' | .) continue ;;
		..) out=${out%/*}; continue ;;
		esac
		if [ -L "$R$out/$c" ]; then
			n=$((n + 1))
			[ $n -le 40 ] || { echo "$1: too many levels of symbolic links" >&2; exit 64; }
			l=$(readlink "$R$out/$c") || exit 71
			case $l in /*) out= ;; esac
			todo=$l/$todo
		else
			out=$out/$c
		fi
	done
	printf '%s\n' "$out"
}
`

// scriptCopyFrom archives $1 (a clean absolute path) as ./BASE of its
// directory; $2 = 1 follows a link $1 names.
const scriptCopyFrom = scriptPrelude + `p=$1
if [ "$2" = 1 ]; then
	rp=$(resolve "$p") || exit
else
	d=$(resolve "${p%/*}") || exit
	rp=$d/${p##*/}
fi
[ -n "$rp" ] || { echo "$p is the target's root: copy its directories one by one" >&2; exit 64; }
if [ ! -e "$R$rp" ] && [ ! -L "$R$rp" ]; then
	echo "no such file or directory" >&2
	exit 66
fi
cd "$R${rp%/*}/" || exit 77
exec tar -cf - "./${rp##*/}"
`

// scriptCopyTo unpacks standard input at $1 (a clean absolute path): into
// it when it is a directory ("into" on stdout), else as it ("as NAME": the
// caller renames the stream's top entry to NAME). $2 = 1: $1 must be a
// directory. $3 = 1: keep owners.
const scriptCopyTo = scriptPrelude + `p=$1
rp=$(resolve "$p") || exit
if [ -d "$R$rp/" ]; then
	dir=$rp
	echo into
elif [ "$2" = 1 ]; then
	echo "no such directory" >&2
	exit 66
else
	dir=${rp%/*}
	[ -d "$R$dir/" ] || { echo "no such directory: ${p%/*}" >&2; exit 66; }
	echo "as ${rp##*/}"
fi
cd "$R$dir/" || exit 77
if [ "$3" = 1 ]; then
	exec tar -xf -
fi
exec tar -xof -
`

// scriptInspect prints the report of ephem ns in sections: "@ns" then
// "TYPE TARGET DEBUG" lines, "@init" then PID 1's argv one per line, and
// "@uid_map", "@gid_map", "@status" (CapEff and Seccomp), "@cgroup",
// "@root".
const scriptInspect = scriptPrelude + `echo @ns
for n in cgroup ipc mnt net pid time user uts; do
	[ -e /proc/self/ns/$n ] || continue
	t=$(readlink /proc/$pid/ns/$n) || { echo "the helper debug container may not read the target's namespaces" >&2; exit 77; }
	echo "$n $t $(readlink /proc/self/ns/$n)"
done
echo @init
tr '\0' '\n' </proc/1/cmdline
echo
echo @uid_map
cat /proc/$pid/uid_map
echo @gid_map
cat /proc/$pid/gid_map
echo @status
grep -E '^(CapEff|Seccomp):' /proc/$pid/status
echo @cgroup
cat /proc/$pid/cgroup
echo @root
readlink /proc/$pid/root
`

// scriptCapture runs tcpdump on the pod's network (which the helper
// shares) with the arguments $@ (it needs no prelude), writing pcap to stdout, until it ends by
// itself (-c) or standard input closes: ephem closes it to stop the
// capture, and so does the kubelet when ephem's connection drops, so no
// tcpdump is left running.
const scriptCapture = `command -v tcpdump >/dev/null 2>&1 || { echo "no tcpdump" >&2; exit 69; }
exec 3<&0
tcpdump -U --immediate-mode -w - "$@" </dev/null &
t=$!
{ cat <&3; kill -TERM $t; } >/dev/null 2>&1 &
exec 3<&-
wait $t
`
