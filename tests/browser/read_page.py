#!/usr/bin/env python3
"""Reads the emulator's page as Chromium rendered it (--dump-dom) and checks it.

  read_page.py state DOM
      prints the traces table's data-state and data-conversation
  read_page.py check DOM LWI EXPECTED_ENVELOPES API_TRACES API_CONVERSATIONS
      checks that the page shows LWI selected with exactly its traces; prints
      ok:/FAIL: lines, exit 1 on any failure

EXPECTED_ENVELOPES holds the envelopes the exporter sends for the events (one
per line, all conversations): the expectation owes nothing to the emulator.
The emulator's own JSON is compared too, so that every cell is covered.
"""
import json
import sys
from html.parser import HTMLParser

COLUMNS = ["timestamp", "message", "customDimensions", "operation_Name", "operation_Id",
           "operation_ParentId", "session_Id", "user_Id", "severityLevel", "itemType",
           "cloud_RoleName", "cloud_RoleInstance", "sdkVersion", "itemCount"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent = tag, dict(attrs), parent
        self.children = []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def elements(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.elements()

    def find(self, tag=None, **attrs):
        return [e for e in self.elements()
                if (tag is None or e.tag == tag)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def kids(self, tag):
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]

    def classes(self):
        return (self.attrs.get("class") or "").split()


class Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(path):
    b = Builder()
    with open(path, encoding="utf-8") as f:
        b.feed(f.read())
    b.close()
    return b.root


def by_id(root, ident):
    found = root.find(id=ident)
    return found[0] if len(found) == 1 else None


def portal_time(iso):
    """The page's rendering of a UTC time: 11/20/2026, 8:00:00.123 AM."""
    date, clock = iso.rstrip("Z").split("T")
    y, mo, d = date.split("-")
    hms, _, frac = clock.partition(".")
    h, mi, s = hms.split(":")
    h = int(h)
    return (f"{int(mo)}/{int(d)}/{y}, {h % 12 or 12}:{mi}:{s}.{(frac + '000')[:3]} "
            f"{'AM' if h < 12 else 'PM'}")


class Checker:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, what, detail=""):
        if cond:
            print(f"ok: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}{': ' + detail if detail else ''}")
        return cond


def page_rows(table):
    """The traces table's rows as {column: text}, customDimensions as [(key, value)]."""
    rows = []
    for body in table.kids("tbody"):
        for tr in body.kids("tr"):
            row = {}
            for td in tr.kids("td"):
                col = td.attrs.get("data-column")
                if col == "customDimensions":
                    kv = [e for e in td.find("table") if "kv" in e.classes()]
                    pairs = []
                    for t in kv[:1]:
                        for r in t.find("tr"):
                            k = [c for c in r.kids("td") if "k" in c.classes()]
                            v = [c for c in r.kids("td") if "v" in c.classes()]
                            if k and v:
                                pairs.append((k[0].text(), v[0].text()))
                    row[col] = pairs
                    summary = td.find("summary")
                    row["summary"] = summary[0].text() if summary else None
                else:
                    row[col] = td.text()
            rows.append(row)
    return rows


def expected_rows(envelopes_path, lwi):
    """The Traces table rows for LWI from the exporter's envelopes, by time; the
    stable sort keeps equal times in the order sent, as the emulator does."""
    rows = []
    with open(envelopes_path, encoding="utf-8") as f:
        for line in f:
            env = json.loads(line)
            base, tags = env["data"]["baseData"], env["tags"]
            props = base.get("properties", {})
            if props.get("LiveWorkItemID") != lwi:
                continue
            rows.append({
                "time": env["time"],
                "timestamp": portal_time(env["time"]),
                "message": base["message"],
                "customDimensions": list(props.items()),
                "operation_Name": tags.get("ai.operation.name", ""),
                "operation_Id": tags.get("ai.operation.id", ""),
                "operation_ParentId": tags.get("ai.operation.parentId", ""),
                "session_Id": tags.get("ai.session.id", ""),
                "user_Id": tags.get("ai.user.id", ""),
                "severityLevel": str(base.get("severityLevel", "")),
                "itemType": "trace",
                "cloud_RoleName": tags.get("ai.cloud.role", ""),
                "cloud_RoleInstance": tags.get("ai.cloud.roleInstance", ""),
                "sdkVersion": tags.get("ai.internal.sdkVersion", ""),
                # A sampled item stands for 100 / sampleRate; the exporter samples nothing.
                "itemCount": str(round(100 / env["sampleRate"]))
                             if 0 < env.get("sampleRate", 100) < 100 else "1",
            })
    rows.sort(key=lambda r: r["time"])
    return rows


def dims_diff(page, expected):
    """What differs between two customDimensions, members in order."""
    if dict(page) == dict(expected):
        return f"members in another order: {[k for k, _ in page]}"
    p, x = dict(page), dict(expected)
    return ", ".join(f"{k}: page {p.get(k)!r} expected {x.get(k)!r}"
                     for k in sorted(p.keys() | x.keys()) if p.get(k) != x.get(k))


def check(dom_path, lwi, envelopes_path, api_traces_path, api_convs_path):
    c = Checker()
    root = parse(dom_path)
    expected = expected_rows(envelopes_path, lwi)
    api = json.load(open(api_traces_path, encoding="utf-8"))
    convs = json.load(open(api_convs_path, encoding="utf-8"))["conversations"]

    # The conversation list, and the chosen conversation in it.
    conv_table = by_id(root, "convs")
    if not c.ok(conv_table is not None, "the page has the conversation list (#convs)"):
        return c
    listed = [tr.attrs.get("data-id") for b in conv_table.kids("tbody") for tr in b.kids("tr")]
    c.ok(listed == [x["LiveWorkItemID"] for x in convs],
         f"the list shows the {len(convs)} conversations, most recent first", f"{listed}")
    selected = [tr for b in conv_table.kids("tbody") for tr in b.kids("tr")
                if "selected" in tr.classes()]
    c.ok(len(selected) == 1 and selected[0].attrs.get("data-id") == lwi,
         f"{lwi} is the one selected conversation in the list",
         f"selected: {[s.attrs.get('data-id') for s in selected]}")
    if len(selected) == 1:
        text = selected[0].text()
        c.ok(lwi in text and f"{len(expected)} traces" in text,
             f"its entry reads '{lwi}' and '{len(expected)} traces'", repr(text))
    c.ok(listed and listed[0] != lwi,
         "it is not the first of the list: the address picked it, not a default")
    title = by_id(root, "title")
    c.ok(title is not None and title.text() == f"Conversation {lwi}",
         "the heading names the conversation", repr(title and title.text()))
    query = by_id(root, "query")
    c.ok(query is not None and f'LiveWorkItemID == "{lwi}"' in query.text(),
         "the query line filters on its LiveWorkItemID", repr(query and query.text()))

    # The traces table: finished, for this conversation, the portal's columns.
    table = by_id(root, "traces")
    if not c.ok(table is not None, "the page has the traces table (#traces)"):
        return c
    c.ok(table.attrs.get("data-state") == "loaded" and table.attrs.get("data-conversation") == lwi,
         "the table is loaded, with this conversation",
         f"state={table.attrs.get('data-state')} conversation={table.attrs.get('data-conversation')}")
    headers = [th.text().strip() for th in table.find("th")]
    c.ok(len(headers) == len(COLUMNS) and all(h.split()[0] == col for h, col in
                                              zip(headers, COLUMNS)),
         "the headers are the Traces table's columns: " + ", ".join(COLUMNS), f"{headers}")
    rows = page_rows(table)
    c.ok(all(list(k for k in r if k != "summary") == COLUMNS for r in rows),
         "every row has one cell per column, in the headers' order")
    if not c.ok(len(rows) == len(expected) and len(rows) > 0,
                f"the table has exactly the conversation's {len(expected)} traces",
                f"{len(rows)} rows"):
        return c
    c.ok([r["timestamp"] for r in rows] == [e["timestamp"] for e in expected],
         "rows are in time order, each timestamp as the portal shows it",
         f"page {[r['timestamp'] for r in rows]} expected {[e['timestamp'] for e in expected]}")

    # Every cell against the envelopes sent.
    for col in COLUMNS[1:]:
        bad = [(i + 1, r[col], e[col]) for i, (r, e) in enumerate(zip(rows, expected))
               if r[col] != e[col]]
        if col == "customDimensions":
            sample = f"{len(expected[0][col])} members"
            bad = [f"row {i}: {dims_diff(p, x)}" for i, p, x in bad]
        else:
            sample = expected[0][col]
            bad = [f"row {i}: page {p!r} expected {x!r}" for i, p, x in bad]
        c.ok(not bad, f"{col} of every row matches the envelope sent (row 1: {sample})",
             "; ".join(bad[:3]))
    durations = [dict(r["customDimensions"]).get("Duration") or "-" for r in rows]
    want = [dict(e["customDimensions"]).get("Duration") or "-" for e in expected]
    c.ok(durations == want and any(d != "-" for d in want),
         f"customDimensions.Duration per row: {', '.join(durations)}",
         f"expected {', '.join(want)}")
    summaries_ok = all(r["summary"] and r["summary"].startswith(
        "{" + json.dumps(r["customDimensions"][0][0]) + ":") for r in rows)
    c.ok(summaries_ok, "collapsed customDimensions start with the first member, as in the portal")

    # And against the emulator's own answer, which the page draws from.
    api_rows = [{
        "timestamp": portal_time(t["timestamp"]),
        "message": t["message"],
        "customDimensions": [(k, v if isinstance(v, str) else json.dumps(v))
                             for k, v in t["customDimensions"].items()],
        "operation_Name": t["operation_Name"], "operation_Id": t["operation_Id"],
        "operation_ParentId": t["operation_ParentId"], "session_Id": t["session_Id"],
        "user_Id": t["user_Id"],
        "severityLevel": "" if t["severityLevel"] is None else str(t["severityLevel"]),
        "itemType": t["itemType"],
        "cloud_RoleName": t["cloud_RoleName"], "cloud_RoleInstance": t["cloud_RoleInstance"],
        "sdkVersion": t["sdkVersion"], "itemCount": str(t["itemCount"]),
    } for t in api]
    c.ok([{k: r[k] for k in COLUMNS} for r in rows] == api_rows,
         "every cell equals /api/traces")
    note = by_id(root, "traces-note")
    c.ok(note is not None and note.text() == f"{len(expected)} records",
         f"the table's note reads '{len(expected)} records'", repr(note and note.text()))
    return c


def main(argv):
    if len(argv) == 3 and argv[1] == "state":
        table = by_id(parse(argv[2]), "traces")
        attrs = table.attrs if table is not None else {}
        print(attrs.get("data-state", "none"), attrs.get("data-conversation", ""))
        return 0
    if len(argv) == 7 and argv[1] == "check":
        return 1 if check(*argv[2:]).failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
