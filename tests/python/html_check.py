"""Reads an HTML page (vidcls predict --format html) and prints what the tests check, as JSON.

Strict where browsers are lenient: every element except the void ones must be closed, in order,
and nothing may follow </html>. Reports the parse errors found, the entries (articles), the
failed ones, every URL-bearing attribute, the scripts, the entry headings' text as a reader sees
it (entities decoded), and the chart elements.

    python tests/python/html_check.py PAGE.html
"""
import json
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
URL_ATTRS = {"src", "href", "srcset", "action", "poster", "data", "xlink:href"}


class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.closed = [], [], False
        self.articles, self.failed, self.scripts, self.urls = 0, 0, 0, []
        self.headings, self.counts = [], {}
        self._heading = None

    def handle_starttag(self, tag, attrs):
        if self.closed:
            self.errors.append(f"<{tag}> after </html>")
        a = dict(attrs)
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.urls += [v for k, v in attrs if k in URL_ATTRS and v is not None]
        if tag == "article":
            self.articles += 1
            self.failed += "failed" in (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        if tag == "h3":
            self._heading = []
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"</{tag}> closes a void element at {self.getpos()}")
            return
        if not self.stack or self.stack[-1][0] != tag:
            open_ = self.stack[-1] if self.stack else None
            self.errors.append(f"</{tag}> at {self.getpos()} but open is {open_}")
            return
        self.stack.pop()
        if tag == "h3" and self._heading is not None:
            self.headings.append("".join(self._heading))
            self._heading = None
        if tag == "html":
            self.closed = True

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)
        if self.closed and data.strip():
            self.errors.append(f"text after </html>: {data[:40]!r}")


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    c = Check()
    c.feed(text)
    c.close()
    if c.stack:
        c.errors.append(f"unclosed: {c.stack[-5:]}")
    if not text.lstrip().lower().startswith("<!doctype html>"):
        c.errors.append("no <!DOCTYPE html>")
    json.dump({"errors": c.errors, "articles": c.articles, "failed": c.failed,
               "scripts": c.scripts, "urls": c.urls, "headings": c.headings,
               "counts": c.counts}, sys.stdout)


if __name__ == "__main__":
    main()
