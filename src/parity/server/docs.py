"""``GET /``: a short index of the endpoints; ``GET /docs``: a page over ``/openapi.json``.

The page is one self-contained HTML file with its script inline (no CDN, no fonts, nothing
fetched but ``/openapi.json`` and the requests a reader sends from it): servers and their
users are often offline. It lists every path and method with its summary, request schema
(and example) and answers, and can send a request and show the answer.
"""

from __future__ import annotations

from parity import __version__
from parity.server.handlers import dumps

ENDPOINTS = (
    ("POST", "/get-online-features", "latest feature values, a status and time per value"),
    ("POST", "/push", "rows to a push source's views"),
    ("POST", "/write-to-online-store", "rows of one feature view, online"),
    ("POST", "/materialize", "load a window of every (or some) view online; ?async=true"),
    ("POST", "/materialize-incremental", "load each view from its last run; ?async=true"),
    ("GET", "/materializations", "recent background materializations"),
    ("GET", "/materializations/{id}", "one background materialization's state"),
    ("GET", "/entities", "registered entities"),
    ("GET", "/feature-views", "feature views and on-demand views"),
    ("GET", "/feature-views/{name}", "one view's spec"),
    ("GET", "/feature-services", "registered feature services"),
    ("GET", "/health", "alive"),
    ("GET", "/ready", "warm; registry and online store answer"),
    ("GET", "/metrics", "Prometheus text"),
    ("GET", "/openapi.json", "the OpenAPI document"),
    ("GET", "/docs", "the API page"),
)


def index(project: str) -> bytes:
    """``GET /``: the project served and each endpoint in a line."""
    return dumps(
        {
            "service": "parity feature server",
            "version": __version__,
            "project": project,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "endpoints": [
                {"method": m, "path": p, "summary": summary} for m, p, summary in ENDPOINTS
            ],
        }
    )


DOCS_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Parity feature server API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c6cbd6}main{max-width:1000px;margin:0 auto;padding:16px 24px}
details{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:10px 0}
summary{cursor:pointer;padding:10px 14px;font-weight:600}
.m{display:inline-block;min-width:52px;text-align:center;border-radius:4px;color:#fff;
font-size:12px;padding:2px 6px;margin-right:8px}.GET{background:#2f7d4f}.POST{background:#2f5fa7}
.body{padding:0 14px 14px}pre{background:#f1f3f6;padding:10px;overflow:auto;border-radius:4px;
font-size:12.5px;max-height:360px}textarea{width:100%;min-height:120px;font:12.5px monospace}
button{margin-top:6px;padding:6px 14px}.sum{color:#566;font-weight:400}
</style></head><body>
<header><h1>Parity feature server</h1><p id="sub">loading /openapi.json ...</p></header>
<main id="paths"></main>
<script>
"use strict";
function el(tag, attrs, kids) {
  var e = document.createElement(tag);
  for (var k in attrs || {}) { if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); }
  (kids || []).forEach(function (c) { e.appendChild(c); });
  return e;
}
function pretty(v) { return JSON.stringify(v, null, 2); }
function example(schema) {
  if (!schema) return {};
  if (schema.example !== undefined) return schema.example;
  if (schema.oneOf) return example(schema.oneOf[0]);
  if (schema.anyOf) return example(schema.anyOf[0]);
  if (schema.type === "object" || schema.properties) {
    var out = {};
    (schema.required || Object.keys(schema.properties || {})).forEach(function (k) {
      out[k] = example((schema.properties || {})[k]);
    });
    return out;
  }
  if (schema.enum) return schema.enum[0];
  if (schema.type === "array") return [example(schema.items)];
  if (schema.type === "integer") return 1001;
  if (schema.type === "number") return 0.5;
  if (schema.type === "boolean") return false;
  return "";
}
function tryIt(method, path, body) {
  var box = el("textarea", {}); box.value = body === undefined ? "" : pretty(body);
  var url = el("input", {size: "60"}); url.value = path;
  var out = el("pre", {text: ""});
  var send = el("button", {text: "Send"});
  send.onclick = function () {
    var init = {method: method, headers: {"content-type": "application/json"}};
    if (method === "POST") init.body = box.value;
    out.textContent = "...";
    fetch(url.value, init).then(function (r) {
      return r.text().then(function (t) {
        var text = t; try { text = pretty(JSON.parse(t)); } catch (e) {}
        out.textContent = r.status + " " + r.statusText + "\\n\\n" + text;
      });
    }).catch(function (e) { out.textContent = String(e); });
  };
  var kids = [el("div", {text: "URL "}, [url])];
  if (method === "POST") kids.push(box);
  kids.push(send, out);
  return el("div", {}, kids);
}
fetch("/openapi.json").then(function (r) { return r.json(); }).then(function (doc) {
  document.getElementById("sub").textContent =
    doc.info.title + " " + doc.info.version + " \\u2014 " + Object.keys(doc.paths).length +
    " paths; the raw document is at /openapi.json";
  var root = document.getElementById("paths");
  Object.keys(doc.paths).forEach(function (path) {
    var item = doc.paths[path];
    Object.keys(item).forEach(function (method) {
      var op = item[method], M = method.toUpperCase();
      var kids = [];
      if (op.description) kids.push(el("p", {text: op.description}));
      var body;
      if (op.requestBody) {
        var schema = op.requestBody.content["application/json"].schema;
        body = example(schema);
        kids.push(el("h4", {text: "Request body"}), el("pre", {text: pretty(schema)}));
      }
      (op.parameters || []).forEach(function (p) {
        kids.push(el("div", {text: p.in + " parameter " + p.name + ": " + pretty(p.schema)}));
      });
      kids.push(el("h4", {text: "Answers"}));
      Object.keys(op.responses || {}).forEach(function (code) {
        var res = op.responses[code];
        var content = res.content && (res.content["application/json"] || res.content["text/plain"] || res.content["text/html"]);
        kids.push(el("details", {}, [
          el("summary", {text: code + " " + (res.description || "")}),
          el("pre", {text: content ? pretty(content.schema) : ""})]));
      });
      kids.push(el("h4", {text: "Try it"}), tryIt(M, path, body));
      root.appendChild(el("details", {}, [
        el("summary", {}, [el("span", {"class": "m " + M, text: M}), document.createTextNode(path + " "),
                           el("span", {"class": "sum", text: op.summary || ""})]),
        el("div", {"class": "body"}, kids)]));
    });
  });
}).catch(function (e) { document.getElementById("sub").textContent = "could not read /openapi.json: " + e; });
</script></body></html>
"""
