//go:build linux

package tray

import (
	"fmt"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
)

// The test side of com.canonical.dbusmenu: what a panel does to show the
// tray's menu and to click in it.

// menuNode is one item of a dbusmenu layout.
type menuNode struct {
	id       int32
	props    map[string]dbus.Variant
	children []*menuNode
}

func (n *menuNode) label() string {
	s, _ := n.props["label"].Value().(string)
	return s
}

// visible reports the "visible" property (true when absent).
func (n *menuNode) visible() bool {
	v, ok := n.props["visible"].Value().(bool)
	return !ok || v
}

// toggled reports a check item's state.
func (n *menuNode) toggled() bool {
	v, _ := n.props["toggle-state"].Value().(int32)
	return v == 1
}

func (n *menuNode) enabled() bool {
	v, ok := n.props["enabled"].Value().(bool)
	return !ok || v
}

// find returns the visible item whose label path matches: each element of
// path is a prefix of the label at that depth.
func (n *menuNode) find(path ...string) *menuNode {
	if len(path) == 0 {
		return n
	}
	for _, c := range n.children {
		if c.visible() && strings.HasPrefix(c.label(), path[0]) {
			if f := c.find(path[1:]...); f != nil {
				return f
			}
		}
	}
	return nil
}

// String prints the visible menu as an indented outline, for failures.
func (n *menuNode) String() string {
	var b strings.Builder
	var walk func(*menuNode, int)
	walk = func(m *menuNode, depth int) {
		for _, c := range m.children {
			if !c.visible() {
				continue
			}
			label := c.label()
			if t, _ := c.props["type"].Value().(string); t == "separator" {
				label = "----"
			}
			fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), label)
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}

// decodeLayout turns a GetLayout answer (a struct (ia{sv}av), nested in
// variants) into menuNodes.
func decodeLayout(v any) (*menuNode, error) {
	fields, ok := v.([]any)
	if !ok || len(fields) != 3 {
		return nil, fmt.Errorf("layout node %T is not (ia{sv}av)", v)
	}
	n := &menuNode{}
	if n.id, ok = fields[0].(int32); !ok {
		return nil, fmt.Errorf("layout id %T", fields[0])
	}
	if n.props, ok = fields[1].(map[string]dbus.Variant); !ok {
		return nil, fmt.Errorf("layout props %T", fields[1])
	}
	children, ok := fields[2].([]dbus.Variant)
	if !ok {
		return nil, fmt.Errorf("layout children %T", fields[2])
	}
	for _, c := range children {
		cn, err := decodeLayout(c.Value())
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, cn)
	}
	return n, nil
}

// trayMenu reads menus of a registered item over the bus.
type trayMenu struct {
	obj dbus.BusObject
}

func newTrayMenu(t testing.TB, conn *dbus.Conn, item sniItem) trayMenu {
	t.Helper()
	v, err := conn.Object(item.sender, dbus.ObjectPath(item.path)).GetProperty("org.kde.StatusNotifierItem.Menu")
	if err != nil {
		t.Fatalf("read the item's Menu property: %v", err)
	}
	path, ok := v.Value().(dbus.ObjectPath)
	if !ok || !path.IsValid() {
		t.Fatalf("item's Menu property is %v", v)
	}
	return trayMenu{obj: conn.Object(item.sender, path)}
}

// layout reads the whole menu. A submenu that comes back without its items
// (fyne.io/systray answers the very first GetLayout one level deep, for
// libdbusmenu's sake) is read again on its own.
func (m trayMenu) layout(parent int32) (*menuNode, error) {
	call := m.obj.Call("com.canonical.dbusmenu.GetLayout", 0, parent, int32(-1), []string{})
	if call.Err != nil {
		return nil, fmt.Errorf("GetLayout: %w", call.Err)
	}
	if len(call.Body) != 2 {
		return nil, fmt.Errorf("GetLayout answered %d values", len(call.Body))
	}
	root, err := decodeLayout(call.Body[1])
	if err != nil {
		return nil, err
	}
	var fill func(*menuNode) error
	fill = func(n *menuNode) error {
		for i, c := range n.children {
			if d, _ := c.props["children-display"].Value().(string); d == "submenu" && len(c.children) == 0 {
				sub, err := m.layout(c.id)
				if err != nil {
					return err
				}
				n.children[i] = sub
			}
			if err := fill(n.children[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return root, fill(root)
}

// click sends the "clicked" event to an item, as a panel does.
func (m trayMenu) click(t testing.TB, n *menuNode) {
	t.Helper()
	if call := m.obj.Call("com.canonical.dbusmenu.Event", 0, n.id, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatalf("click %q: %v", n.label(), call.Err)
	}
}

// clickQuit sends the "clicked" event for Quit without waiting for an
// answer, as panels send every click (libdbusmenu-qt's asyncCall). The
// tray leaves the bus as it quits, so an answer may never come, and a
// test waiting for one failed under load ("Message recipient
// disconnected from message bus without replying").
func (m trayMenu) clickQuit(t testing.TB, n *menuNode) {
	t.Helper()
	call := m.obj.Go("com.canonical.dbusmenu.Event", dbus.FlagNoReplyExpected, nil, n.id, "clicked", dbus.MakeVariant(""), uint32(0))
	if call.Err != nil {
		t.Fatalf("click %q: %v", n.label(), call.Err)
	}
}
