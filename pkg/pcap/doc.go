// Package pcap writes and reads the classic pcap file format that tcpdump
// and Wireshark read, and compiles capture filters in tcpdump's syntax to
// classic BPF for the kernel (SO_ATTACH_FILTER).
//
// Filters are compiled by the host's libpcap when it can be loaded: ephem
// is not linked against it, but loads it at run time (dlopen, with cgo;
// libpcap.go), compiles for the pcap link type the capture writes, and
// adapts programs for cooked sockets as libpcap does for its own. Without
// libpcap (not installed, or a build without cgo), a fallback compiles a
// subset: github.com/packetcap/go-pcap/filter compiles one primitive
// ("udp port 53", "src host 10.0.0.1") at a time and this package parses
// the boolean structure around them (not, and, or, parentheses, with
// tcpdump's precedence) and joins the primitives' programs. Only the
// primitives that compiler gets right are accepted; anything else is
// refused, saying how to get the full syntax, rather than compiled wrongly.
package pcap
