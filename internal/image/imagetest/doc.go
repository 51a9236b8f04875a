// Package imagetest builds OCI images from real files and serves them from
// an in-process registry on loopback, for the tests of the image store and
// of everything that runs images. Test-only: no binary links it.
package imagetest
