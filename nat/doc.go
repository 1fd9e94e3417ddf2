// Package nat discovers the node's public address with STUN and classifies its NAT.
//
// Everything here works on the node's one shared UDP socket, which quic-go's
// quic.Transport owns. The package never reads from that socket: the
// socket's single reader goroutine hands every datagram for which
// stun.IsMessage is true to [STUNClient.HandleSTUN], and requests go out
// through a [PacketWriter] (the transport's WriteTo). The mapping STUN
// discovers is therefore the very mapping QUIC and the punch probes use.
// [ClassifyOnce] is the exception: it reads a fresh socket of its own.
//
// [Classify] runs the RFC 5780 behaviour-discovery tests and reports the
// NAT's mapping and filtering behaviour in RFC 4787 terms, plus a sentence
// for people ([Report.PlainWords]).
package nat
