package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weftnet/weft/test/netns"
)

// hostileNick is a nickname a router may legally have (no spaces, no
// control characters) that runs script if a page puts it into the
// document as markup.
const hostileNick = "<img/src=x/onerror=document.body.dataset.pwned=1>"

// rttRE matches a round-trip time as the page shows it.
var rttRE = regexp.MustCompile(`\b\d+(\.\d+)? ms\b`)

// pageState is what the topology page shows, read from its document.
type pageState struct {
	Polls int        `json:"polls"`
	Nodes []pageNode `json:"nodes"`
	Links []pageLink `json:"links"`
	Imgs  int        `json:"imgs"`
	Pwned string     `json:"pwned"`
	Stale bool       `json:"stale"`
	Text  string     `json:"text"`
	// Traffic is the traffic column of the connections table, a cell per
	// row.
	Traffic []string `json:"traffic"`
}

type pageNode struct {
	ID    string `json:"id"`
	Class string `json:"class"`
	Title string `json:"title"`
}

type pageLink struct {
	A, B, State string
}

// readPage is the script that reads a pageState from the page.
const readPage = `({
	polls: +(document.body.dataset.polls || 0),
	nodes: [...document.querySelectorAll("#graph g.node")].map((g) => ({
		id: g.dataset.id, class: g.getAttribute("class"), title: g.querySelector("title").textContent })),
	links: [...document.querySelectorAll("#graph line.link")].map((l) => ({ A: l.dataset.a, B: l.dataset.b, State: l.dataset.state })),
	imgs: document.querySelectorAll("img").length,
	pwned: document.body.dataset.pwned || "",
	stale: document.getElementById("status").className === "stale",
	text: document.body.innerText,
	traffic: [...document.querySelectorAll("#links tbody tr")].map((tr) => tr.cells.length > 6 ? tr.cells[6].textContent : ""),
})`

// link returns the state of the drawn link between peers a and b ("" if
// none is drawn).
func (s pageState) link(a, b string) string {
	for _, l := range s.Links {
		if (l.A == a && l.B == b) || (l.A == b && l.B == a) {
			return l.State
		}
	}
	return ""
}

// browser is a headless Chromium running inside a host's namespace and
// driven over the DevTools protocol (a pipe, no debugging port).
type browser struct {
	ctx    context.Context
	cancel func()
}

// startBrowser starts Debian's chromium inside h's namespace, where
// 127.0.0.1 is h's loopback and nothing outside the test's world can be
// reached. It is ended, with every process of its process group, when
// the test ends; the world's cleanup ends whatever is left in the
// namespace.
func startBrowser(t *testing.T, h *netns.Host) *browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found (run test/deps.sh --chromium): %v", err)
	}
	// ip netns exec, then chromium with the allocator's flags; exec keeps
	// the DevTools pipe (file descriptors 3 and 4).
	wrapper := filepath.Join(h.World().Dir, "chromium-"+h.Nick)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", h.Name, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(h.World().Dir, "chromium-tmp-"+h.Nick)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(wrapper),
		chromedp.UserDataDir(filepath.Join(h.World().Dir, "chromium-profile-"+h.Nick)),
		// Its temporary files (shared memory among them) go into the
		// world's directory, removed with the world.
		chromedp.Env("TMPDIR="+tmp),
		// The tests run as root, and Chromium's sandbox refuses to run as
		// root; the browser only loads the page of a router the test
		// started, inside a namespace without a way out.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 1000),
		// Nothing but the page: no updates, reports, pings, or lookups.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("dns-prefetch-disable", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.ModifyCmdFunc(func(c *exec.Cmd) {
			cmd = c
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{ctx: ctx, cancel: func() {
		cancel()
		acancel()
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its children, by process group
		}
	}}
	t.Cleanup(b.cancel)
	// The first Run starts the browser, on ctx itself: a browser started
	// on a shorter-lived context would end with it.
	timer := time.AfterFunc(60*time.Second, cancel)
	defer timer.Stop()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("chromium in %s does not start: %v", h.Nick, err)
	}
	return b
}

// open loads url and waits up to 30 s for the page's first poll.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	netns.Eventually(t, 30*time.Second, "the page polls the router", func() error {
		s, err := b.state()
		if err != nil {
			return err
		}
		if s.Polls == 0 {
			return fmt.Errorf("no poll yet: %.300q", s.Text)
		}
		return nil
	})
}

// state reads what the page shows now.
func (b *browser) state() (pageState, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
}

// screenshot writes a PNG of the whole page to path.
func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page: %s (%d bytes)", path, len(png))
}

// TestPage loads the topology page of h1 in headless Chromium against
// three routers: it draws the three peers, h1's links to h2 and h3 as
// direct and the link h2-h3 as one between other peers, and a nickname
// that is markup stays text. Blocking h1-h3 on the underlay turns the
// drawn link h1-h3 into one relayed through h2, within the time the
// routers need to notice; stopping h3's router then turns it failing.
// With WEFT_SCREENSHOT=FILE (make screenshot) it writes a PNG of the page
// with the relayed link, for the docs, and h3 keeps the nickname h3.
func TestPage(t *testing.T) {
	shot := os.Getenv("WEFT_SCREENSHOT")
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	nick3 := hostileNick
	if shot != "" {
		nick3 = "h3"
	}
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	h3.Launch(t, "--name", nick3, h1.PeerAddr(), h2.PeerAddr())
	for _, p := range [][2]*netns.Host{{h1, h2}, {h1, h3}, {h2, h3}} {
		netns.Eventually(t, connectTimeout, p[0].Nick+"-"+p[1].Nick+" established", func() error { return p[0].EstablishedWith(p[1]) })
	}
	c1 := h1.AddContainer(t, "web", "10.2.1.1/24")
	c3 := h3.AddContainer(t, "db", "10.2.1.3/24")
	c1.WaitPing(t, c3.IP, pingTimeout)
	names := map[*netns.Host]string{}
	for _, h := range []*netns.Host{h1, h2, h3} {
		n, err := h.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		names[h] = n
	}
	n1, n2, n3 := names[h1], names[h2], names[h3]

	b := startBrowser(t, h1)
	b.open(t, "http://127.0.0.1:6784/")
	var s pageState
	netns.Eventually(t, 30*time.Second, "three peers and three links drawn", func() error {
		var err error
		if s, err = b.state(); err != nil {
			return err
		}
		ids := []string{}
		for _, n := range s.Nodes {
			ids = append(ids, n.ID)
		}
		slices.Sort(ids)
		want := []string{n1, n2, n3}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			return fmt.Errorf("nodes %v, want %v", ids, want)
		}
		if s.link(n1, n2) != "direct" || s.link(n1, n3) != "direct" || s.link(n2, n3) != "remote" || len(s.Links) != 3 {
			return fmt.Errorf("links %+v", s.Links)
		}
		if !rttRE.MatchString(s.Text) {
			return fmt.Errorf("no round-trip time shown in %.600q", s.Text)
		}
		if len(s.Traffic) != 2 || slices.ContainsFunc(s.Traffic, func(c string) bool { return !strings.HasSuffix(c, "B") }) {
			return fmt.Errorf("traffic per direct link: %q, want bytes on both", s.Traffic)
		}
		if !strings.Contains(s.Text, "web.weft.local") || !strings.Contains(s.Text, "netns:"+w.Prefix+"-web") {
			return fmt.Errorf("no target or DNS name web in %.600q", s.Text)
		}
		return nil
	})
	t.Logf("drawn: %+v", s.Links)
	// The nickname is shown as the text it is, and nothing ran.
	for _, n := range s.Nodes {
		if n.ID == n3 && !strings.HasPrefix(n.Title, nick3+" ") {
			t.Errorf("h3's node is titled %q, want it to start with %q", n.Title, nick3)
		}
	}
	if s.Imgs != 0 || s.Pwned != "" {
		t.Errorf("the nickname %q became markup: %d img elements, pwned %q", nick3, s.Imgs, s.Pwned)
	}

	// Cut h1-h3: h1 notices (heartbeat timeout), then reaches h3 through h2.
	cut := time.Now()
	w.Block(t, h1, h3)
	netns.Eventually(t, rerouteTimeout, "the link h1-h3 drawn as relayed", func() error {
		var err error
		if s, err = b.state(); err != nil {
			return err
		}
		if st := s.link(n1, n3); st != "relayed" {
			return fmt.Errorf("link h1-h3 is %q", st)
		}
		if s.Stale || len(s.Nodes) != 3 || s.link(n1, n2) != "direct" {
			return fmt.Errorf("stale %v, nodes %+v, links %+v", s.Stale, s.Nodes, s.Links)
		}
		return nil
	})
	t.Logf("h1-h3 drawn relayed %v after the cut: %+v", time.Since(cut).Round(time.Second), s.Links)
	if !strings.Contains(s.Text, "relayed via h2") {
		t.Errorf("the connections table does not say relayed via h2: %.800q", s.Text)
	}
	if s.Imgs != 0 || s.Pwned != "" {
		t.Errorf("after the cut: %d img elements, pwned %q", s.Imgs, s.Pwned)
	}
	if shot != "" {
		c1.WaitPing(t, c3.IP, pingTimeout) // traffic through the relay, for the picture
		time.Sleep(2 * time.Second)        // one more poll
		b.screenshot(t, shot)
	}

	// Stop h3's router: nothing reaches it, and h1's attempts fail.
	h3.Stop(t)
	netns.Eventually(t, rerouteTimeout, "the link h1-h3 drawn as failing", func() error {
		var err error
		if s, err = b.state(); err != nil {
			return err
		}
		if st := s.link(n1, n3) + s.link(n1, "addr:"+h3.PeerAddr()); st != "failing" {
			return fmt.Errorf("link h1-h3 is %q: %+v", st, s.Links)
		}
		return nil
	})
	t.Logf("h1-h3 drawn failing after h3 stopped: %+v", s.Links)
	if err := b.ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("browser: %v", err)
	}
}
