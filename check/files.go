package check

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
)

// Bounds on the files the flags name. Each is many times what a real one
// holds (a system CA bundle is about 200 KiB); anything larger, or not a
// regular file (/dev/zero, a FIFO that would block), is a mistake that must
// not cost the run its memory or its deadline.
const (
	maxPasswordFile = 4 << 10
	maxCAFile       = 1 << 20
	maxCertFile     = 256 << 10
)

// readFile reads the regular file at path, at most max bytes, for flag.
func readFile(flag, path string, max int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, configErr("reading %s: %s: %v", flag, quote(path), err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, configErr("reading %s: %s: %v", flag, quote(path), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, configErr("%s %s: not a regular file", flag, quote(path))
	}
	if fi.Size() > max {
		return nil, configErr("%s %s: larger than %d KiB", flag, quote(path), max>>10)
	}
	// One buffer of the size the file has, plus a byte to see it grow.
	b := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(io.LimitReader(f, max+1), b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, configErr("reading %s: %s: %v", flag, quote(path), unwrapPath(err))
	}
	if n > int(fi.Size()) {
		return nil, configErr("%s %s: grew while it was read", flag, quote(path))
	}
	return b[:n], nil
}

// readPassword is the first line of the file, as `echo secret > file` writes it.
func readPassword(path string) (string, error) {
	b, err := readFile("--password-file", path, maxPasswordFile)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", configErr("--password-file %s: empty password", quote(path))
	}
	return pw, nil
}

func loadTLS(opts Options) (*tls.Config, error) {
	if opts.Insecure && opts.CACert != "" {
		return nil, configErr("--insecure and --cacert contradict each other")
	}
	return TLSConfig(TLSFiles{CACert: opts.CACert, Cert: opts.Cert, Key: opts.Key, ServerName: opts.ServerName},
		opts.Insecure, func(flag, path string) ([]byte, error) {
			max := int64(maxCertFile)
			if flag == "--cacert" {
				max = maxCAFile
			}
			return readFile(flag, path, max)
		})
}

// TLSFiles names what a TLS client of Patroni's REST API uses: CA
// certificates to trust, a client certificate and its key (for Patroni's
// verify_client), and the name to verify.
type TLSFiles struct {
	CACert, Cert, Key string
	ServerName        string
}

// TLSConfig is the TLS configuration of a client of Patroni's REST API:
// the check's, and the set-up tools' when they ask Patroni. read reads a
// PEM file given by a flag (--cacert, --cert or --key): the check reads
// from disk, bounded (readFile), the set-up tools through their view of
// the machine.
func TLSConfig(f TLSFiles, insecure bool, read func(flag, path string) ([]byte, error)) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: insecure,
	}
	if f.CACert != "" {
		pem, err := read("--cacert", f.CACert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, configErr("--cacert %s: no PEM certificate in it", quote(f.CACert))
		}
	}
	switch {
	case f.Cert != "" && f.Key == "":
		return nil, configErr("--cert needs --key")
	case f.Cert == "" && f.Key != "":
		return nil, configErr("--key needs --cert")
	case f.Cert != "":
		cert, err := read("--cert", f.Cert)
		if err != nil {
			return nil, err
		}
		key, err := read("--key", f.Key)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, configErr("--cert %s / --key %s: %v", quote(f.Cert), quote(f.Key), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// unwrapPath turns "read /x: is a directory" into a message that keeps the
// path once.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// quote quotes a user-given string that would break a one-line message.
func quote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
