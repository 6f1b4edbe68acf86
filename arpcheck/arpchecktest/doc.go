// Package arpchecktest is an in-memory Ethernet segment with a fake clock and
// scripted hosts, for testing code that uses package arpcheck without root, raw
// sockets or waiting, as net/http/httptest is for HTTP.
package arpchecktest
