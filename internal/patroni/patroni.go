// Package patroni reads what a node's Patroni says about itself: its
// configuration file (where its REST API listens, with which TLS, where
// PostgreSQL listens) and its REST API's /cluster answer (the members).
package patroni

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/patroni-vip-check/patroni-vip-check/check"
)

// MaxConfig bounds a configuration file; Patroni's are a few KiB.
const MaxConfig = 1 << 20

// Config is the part of a Patroni configuration that matters here.
type Config struct {
	Path       string
	Scope      string `yaml:"scope"`
	Name       string `yaml:"name"`
	RestAPI    RestAPI
	Ctl        Ctl
	PostgreSQL PostgreSQL
}

// RestAPI is Patroni's restapi section.
type RestAPI struct {
	Listen          string `yaml:"listen"`
	ConnectAddress  string `yaml:"connect_address"`
	CertFile        string `yaml:"certfile"`
	KeyFile         string `yaml:"keyfile"`
	KeyFilePassword string `yaml:"keyfile_password"`
	CAFile          string `yaml:"cafile"`
	VerifyClient    string `yaml:"verify_client"` // none, optional, required
}

// Ctl is Patroni's ctl section: patronictl's client certificate, which
// suits a check too.
type Ctl struct {
	CACert          string `yaml:"cacert"`
	CertFile        string `yaml:"certfile"`
	KeyFile         string `yaml:"keyfile"`
	KeyFilePassword string `yaml:"keyfile_password"`
	Insecure        bool   `yaml:"insecure"`
}

// PostgreSQL is Patroni's postgresql section.
type PostgreSQL struct {
	Listen         string `yaml:"listen"`
	ConnectAddress string `yaml:"connect_address"`
	// ListenAddresses is parameters.listen_addresses, which Patroni
	// replaces with listen's hosts.
	ListenAddresses string
	// DataDir is data_dir, PostgreSQL's data directory.
	DataDir string
}

type rawConfig struct {
	Scope      string  `yaml:"scope"`
	Name       string  `yaml:"name"`
	RestAPI    RestAPI `yaml:"restapi"`
	Ctl        Ctl     `yaml:"ctl"`
	PostgreSQL struct {
		Listen         string         `yaml:"listen"`
		ConnectAddress string         `yaml:"connect_address"`
		Parameters     map[string]any `yaml:"parameters"`
		DataDir        string         `yaml:"data_dir"`
	} `yaml:"postgresql"`
}

// Parse reads a configuration file's contents; name is for messages.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxConfig {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxConfig)
	}
	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	c := &Config{Path: name, Scope: raw.Scope, Name: raw.Name, RestAPI: raw.RestAPI, Ctl: raw.Ctl}
	c.PostgreSQL.Listen = raw.PostgreSQL.Listen
	c.PostgreSQL.ConnectAddress = raw.PostgreSQL.ConnectAddress
	c.PostgreSQL.DataDir = raw.PostgreSQL.DataDir
	if v, ok := raw.PostgreSQL.Parameters["listen_addresses"]; ok {
		c.PostgreSQL.ListenAddresses = fmt.Sprint(v)
	}
	return c, nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Candidates are where Debian's and the RPM packages put a node's
// configuration: Debian's patroni package writes /etc/patroni/VERSION-CLUSTER.yml,
// the RPMs /etc/patroni/patroni.yml, and many set-ups /etc/patroni.yml.
func Candidates(fsys fs.FS) []string {
	var out []string
	for _, pattern := range []string{"etc/patroni/*.yml", "etc/patroni/*.yaml", "etc/patroni.yml", "etc/patroni.yaml"} {
		names, _ := fs.Glob(fsys, pattern)
		slices.Sort(names)
		for _, n := range names {
			out = append(out, "/"+n)
		}
	}
	return out
}

// Find reads the candidates and returns the one node configuration
// among them: a file with a restapi section (Debian's dcs.yml, a
// template, has none). More than one is an error that names them.
func Find(fsys fs.FS) (*Config, error) {
	var found []*Config
	var names []string
	for _, name := range Candidates(fsys) {
		data, err := readFile(fsys, name)
		if err != nil {
			continue
		}
		c, err := Parse(name, data)
		if err != nil || c.RestAPI.ConnectAddress == "" && c.RestAPI.Listen == "" {
			continue
		}
		found = append(found, c)
		names = append(names, name)
	}
	switch len(found) {
	case 0:
		return nil, errors.New("no Patroni configuration in /etc/patroni/*.yml or /etc/patroni.yml")
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d Patroni configurations (%s)", len(found), strings.Join(names, ", "))
}

// Load reads the configuration file name.
func Load(fsys fs.FS, name string) (*Config, error) {
	data, err := readFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return Parse(name, data)
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(strings.TrimPrefix(path.Clean(name), "/"))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// HTTPS reports whether the REST API speaks TLS.
func (c *Config) HTTPS() bool { return c.RestAPI.CertFile != "" }

// ClientCertRequired reports whether the REST API asks for a client
// certificate (verify_client optional or required).
func (c *Config) ClientCertRequired() bool {
	v := strings.ToLower(c.RestAPI.VerifyClient)
	return c.HTTPS() && (v == "required" || v == "optional")
}

// SplitHostPort splits Patroni's "host:port" (IPv6 hosts may be in
// brackets); the port is required.
func SplitHostPort(addr string) (host string, port int, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("%q has no port", addr)
	}
	port, err = strconv.Atoi(addr[i+1:])
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: invalid port", addr)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]")
	return host, port, nil
}

// ListenHosts are the hosts of postgresql.listen ("127.0.0.1,10.0.0.1:5432"),
// and its port.
func (p PostgreSQL) ListenHosts() ([]string, int, error) {
	if p.Listen == "" {
		return nil, 0, errors.New("postgresql.listen is not set")
	}
	hosts, port, err := SplitHostPort(p.Listen)
	if err != nil {
		return nil, 0, fmt.Errorf("postgresql.listen %w", err)
	}
	var out []string
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]"))
		if h != "" {
			out = append(out, h)
		}
	}
	return out, port, nil
}

// Covers reports whether PostgreSQL listening on hosts (listen_addresses
// syntax: '*', 0.0.0.0, ::, addresses) accepts connections to addr.
// Host names are not resolved: a name never counts.
func Covers(hosts []string, addr netip.Addr) bool {
	for _, h := range hosts {
		switch h {
		case "*":
			return true
		case "0.0.0.0":
			if addr.Is4() {
				return true
			}
		case "::":
			return true // Linux binds :: for both families unless bindv6only
		}
		if a, err := netip.ParseAddr(h); err == nil && a.Unmap() == addr.Unmap() {
			return true
		}
	}
	return false
}

// SplitList splits listen_addresses ("'*'", "localhost, 10.0.0.1").
func SplitList(s string) []string {
	s = strings.Trim(strings.TrimSpace(s), "'\"")
	var out []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// TLSFiles are the files a check of this node's REST API needs.
type TLSFiles = check.TLSFiles

// CheckTLS works out the check's TLS flags from the configuration: the
// CA that signed the REST API's certificate (restapi.cafile, or the
// certificate itself when it is self-signed), a client certificate
// when verify_client asks for one (ctl's, else the REST API's own), and
// a server name when the certificate does not name host. readFile reads
// the certificate.
func (c *Config) CheckTLS(host string, readFile func(string) ([]byte, error)) (TLSFiles, error) {
	var t TLSFiles
	if !c.HTTPS() {
		return t, nil
	}
	certPEM, err := readFile(c.RestAPI.CertFile)
	if err != nil {
		return t, fmt.Errorf("reading restapi.certfile: %w", err)
	}
	cert, err := firstCert(certPEM)
	if err != nil {
		return t, fmt.Errorf("restapi.certfile %s: %w", c.RestAPI.CertFile, err)
	}
	switch {
	case c.RestAPI.CAFile != "":
		t.CACert = c.RestAPI.CAFile
	case c.Ctl.CACert != "":
		t.CACert = c.Ctl.CACert
	case bytes.Equal(cert.RawIssuer, cert.RawSubject) &&
		cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil:
		// Self-signed: trusting the certificate itself works (Go accepts
		// a leaf found among the roots), CA or not.
		t.CACert = c.RestAPI.CertFile
	}
	if err := cert.VerifyHostname(host); err != nil {
		if len(cert.DNSNames) == 0 {
			return t, fmt.Errorf("restapi.certfile %s names neither %s nor any DNS name; give --servername", c.RestAPI.CertFile, host)
		}
		t.ServerName = cert.DNSNames[0]
	}
	if c.ClientCertRequired() {
		cert, key, pw := c.Ctl.CertFile, c.Ctl.KeyFile, c.Ctl.KeyFilePassword
		if cert == "" {
			cert, key, pw = c.RestAPI.CertFile, c.RestAPI.KeyFile, c.RestAPI.KeyFilePassword
		}
		if key == "" {
			key = cert // Patroni allows the key in the certificate file
		}
		if pw != "" {
			return t, fmt.Errorf("the client key %s is encrypted (keyfile_password): patroni-vip-check cannot use it; give --cert and --key", key)
		}
		t.Cert, t.Key = cert, key
	}
	return t, nil
}

func firstCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM certificate in it")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// Member is one member of Patroni's /cluster answer.
type Member struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
}

// MaxCluster bounds a /cluster answer.
const MaxCluster = 1 << 20

// ParseCluster reads Patroni's /cluster answer.
func ParseCluster(body []byte) ([]Member, error) {
	var c struct {
		Members []Member `json:"members"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("not Patroni's /cluster answer: %w", err)
	}
	if len(c.Members) == 0 {
		return nil, errors.New("no members in Patroni's /cluster answer")
	}
	return c.Members, nil
}

// Client is an HTTP client for the REST API with the check's TLS
// settings; files are read through readFile.
func Client(t TLSFiles, insecure bool, timeout time.Duration, readFile func(string) ([]byte, error)) (*http.Client, error) {
	cfg, err := check.TLSConfig(t, insecure, func(_, path string) ([]byte, error) { return readFile(path) })
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:             nil, // never a proxy from the environment
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
		TLSClientConfig:   cfg,
		DisableKeepAlives: true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// Members asks the REST API at base ("https://10.0.0.1:8008") for /cluster.
func Members(ctx context.Context, client *http.Client, base string) ([]Member, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCluster+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", req.URL, resp.StatusCode)
	}
	if len(body) > MaxCluster {
		return nil, fmt.Errorf("GET %s: answer larger than %d bytes", req.URL, MaxCluster)
	}
	return ParseCluster(body)
}
