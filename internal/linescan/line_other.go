//go:build !amd64 || purego

package linescan

func line(b []byte, sep, first, last byte) (int, bool) { return lineGo(b, sep, first, last) }

func lineFast(b []byte, sep, first, last byte) (int, bool) { return lineGo(b, sep, first, last) }
