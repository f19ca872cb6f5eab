// Renders /api/v1/openapi.json as a browsable page. Self-contained: no libraries, no CDN.
// Text from the document is only ever inserted as text nodes, never parsed as HTML.
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "patch", "delete", "head", "options", "trace"];
  let doc = null;

  // --- small DOM helpers -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Descriptions use a little Markdown: paragraphs and `code`. Nothing else is interpreted.
  function prose(text, cls) {
    if (!text) return null;
    const wrap = el("div", { class: cls || "desc" });
    for (const para of String(text).split(/\n\s*\n/)) {
      const p = el("p");
      String(para).split("`").forEach((part, i) => {
        if (part) p.append(i % 2 === 1 ? el("code", {}, part) : document.createTextNode(part));
      });
      wrap.append(p);
    }
    return wrap;
  }

  function methodBadge(method) {
    const known = ["get", "post", "put", "patch", "delete"].includes(method);
    return el("span", { class: "method " + (known ? method : "other") }, method);
  }

  function anchorFor(method, path) {
    return "op-" + method + "-" + path.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");
  }

  // --- $ref resolution ---------------------------------------------------------------------

  function resolve(ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return null;
    let node = doc;
    for (const raw of ref.slice(2).split("/")) {
      const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !(key in node)) return null;
      node = node[key];
    }
    return node;
  }

  function deref(obj) {
    // Parameters, responses and headers may themselves be references.
    let seen = 0;
    while (obj && obj.$ref && seen++ < 10) obj = resolve(obj.$ref) || {};
    return obj || {};
  }

  function refName(ref) {
    return ref.split("/").pop().replace(/~1/g, "/").replace(/~0/g, "~");
  }

  // --- schemas -----------------------------------------------------------------------------

  function typeLabel(schema) {
    if (!schema || typeof schema !== "object") return "any";
    if (schema.$ref) return refName(schema.$ref);
    let type = schema.type;
    if (Array.isArray(type)) type = type.join(" | ");
    if (type === "array") return "array of " + typeLabel(schema.items);
    if (type) return schema.format ? type + " (" + schema.format + ")" : type;
    if (schema.oneOf) return "one of";
    if (schema.anyOf) return "any of";
    if (schema.allOf) return "all of";
    if (schema.enum) return "enum";
    if ("const" in schema) return "constant";
    return "any";
  }

  function constraints(schema) {
    const out = [];
    const pairs = [
      ["minimum", "≥ "], ["maximum", "≤ "], ["exclusiveMinimum", "> "], ["exclusiveMaximum", "< "],
      ["minLength", "min length "], ["maxLength", "max length "],
      ["minItems", "min items "], ["maxItems", "max items "],
      ["pattern", "pattern "], ["default", "default "],
    ];
    for (const [key, label] of pairs) {
      if (schema[key] !== undefined) out.push(label + JSON.stringify(schema[key]));
    }
    if (schema.enum) out.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
    if ("const" in schema) out.push("= " + JSON.stringify(schema.const));
    if (schema.nullable || (Array.isArray(schema.type) && schema.type.includes("null"))) out.push("nullable");
    if (schema.readOnly) out.push("read-only");
    return out.length ? el("span", { class: "constraint" }, out.join(" · ")) : null;
  }

  // Renders a schema as a nested list. `seen` holds the $refs on the current branch, so
  // recursive schemas stop instead of looping.
  function schemaTree(schema, seen) {
    seen = seen || new Set();
    if (!schema || typeof schema !== "object") return el("span", { class: "type" }, "any");
    if (schema.$ref) {
      const name = refName(schema.$ref);
      const target = resolve(schema.$ref);
      if (!target || seen.has(schema.$ref)) {
        return el("a", { class: "type", href: "#schema-" + name }, name);
      }
      const inner = new Set(seen).add(schema.$ref);
      const det = el("details", { class: "ref" },
        el("summary", {}, el("span", { class: "type" }, name), " ", el("a", { href: "#schema-" + name, class: "muted" }, "↗")));
      det.addEventListener("toggle", function fill() {
        det.removeEventListener("toggle", fill);
        det.append(schemaTree(target, inner));
      });
      return det;
    }
    const box = el("div", { class: "schema" });
    if (schema.description) box.append(prose(schema.description));
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    if (Object.keys(props).length) {
      const list = el("ul");
      for (const [name, sub] of Object.entries(props)) {
        const head = [el("span", { class: "prop" }, name), required.has(name) ? el("span", { class: "req" }, "required") : null, " "];
        if (sub && sub.$ref) {
          // The expandable reference shows the type name itself.
          list.append(el("li", {}, head, schemaTree(sub, seen)));
          continue;
        }
        list.append(el("li", {}, head,
          el("span", { class: "type" }, typeLabel(sub)),
          sub ? constraints(sub) : null,
          sub && sub.description ? prose(sub.description) : null,
          nested(sub, seen)));
      }
      box.append(list);
    } else if (schema.type === "array") {
      box.append(el("div", {}, el("span", { class: "type" }, typeLabel(schema)), constraints(schema)));
      const items = nested(schema.items, seen, true);
      if (items) box.append(items);
    } else if (schema.oneOf || schema.anyOf || schema.allOf) {
      const kind = schema.oneOf ? "one of" : schema.anyOf ? "any of" : "all of";
      const list = el("ul");
      for (const alt of schema.oneOf || schema.anyOf || schema.allOf) list.append(el("li", {}, schemaTree(alt, seen)));
      box.append(el("div", { class: "muted" }, kind), list);
    } else {
      box.append(el("div", {}, el("span", { class: "type" }, typeLabel(schema)), constraints(schema)));
    }
    if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
      box.append(el("div", { class: "muted" }, "additional properties: "), schemaTree(schema.additionalProperties, seen));
    }
    return box;
  }

  // What to show under a property: its own structure when it has any worth expanding.
  function nested(sub, seen, always) {
    if (!sub || typeof sub !== "object") return null;
    if (sub.$ref) return schemaTree(sub, seen);
    if (sub.properties || sub.oneOf || sub.anyOf || sub.allOf) return schemaTree(sub, seen);
    if (sub.type === "array" && sub.items) {
      const items = sub.items;
      if (items.$ref || items.properties || items.oneOf || items.anyOf || items.allOf) return schemaTree(items, seen);
    }
    return always ? schemaTree(sub, seen) : null;
  }

  function contentBlock(content) {
    const wrap = el("div");
    for (const [media, body] of Object.entries(content || {})) {
      wrap.append(el("div", { class: "media" }, media));
      if (body && body.schema) wrap.append(schemaTree(body.schema));
    }
    return wrap;
  }

  // --- operations --------------------------------------------------------------------------

  function parametersTable(params) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "In"), el("th", {}, "Type"), el("th", {}, "Description")));
    for (const raw of params) {
      const p = deref(raw);
      const schema = p.schema || {};
      table.append(el("tr", {},
        el("td", {}, el("span", { class: "prop" }, p.name || "?"), p.required ? el("span", { class: "req" }, "required") : null),
        el("td", { class: "muted" }, p.in || ""),
        el("td", {}, el("span", { class: "type" }, typeLabel(schema)), constraints(deref(schema))),
        el("td", {}, prose(p.description))));
    }
    return table;
  }

  function responsesTable(responses) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Description")));
    const codes = Object.keys(responses || {}).sort();
    for (const code of codes) {
      const r = deref(responses[code]);
      const cell = el("td", {}, prose(r.description, "text"));
      const headers = Object.entries(r.headers || {});
      if (headers.length) {
        cell.append(el("div", { class: "media" }, "headers: "),
          el("div", { class: "mono" }, headers.map(([name, h]) => name + " (" + typeLabel(deref(h).schema) + ")").join(", ")));
      }
      if (r.content) cell.append(contentBlock(r.content));
      table.append(el("tr", {}, el("td", { class: "status s" + code[0] }, code), cell));
    }
    return table;
  }

  function securityLabel(op) {
    const requirements = op.security !== undefined ? op.security : doc.security;
    if (!requirements || !requirements.length) return null;
    const optional = requirements.some((r) => Object.keys(r).length === 0);
    return el("span", { class: "lock", title: "Needs a bearer token" }, optional ? "token optional" : "🔒 token required");
  }

  function operation(path, method, op, pathItem) {
    const params = [...(pathItem.parameters || []), ...(op.parameters || [])];
    const body = el("div", { class: "op-body" });
    const description = prose(op.description, "text");
    if (description) body.append(description);
    if (params.length) body.append(el("h4", {}, "Parameters"), parametersTable(params));
    if (op.requestBody) {
      const rb = deref(op.requestBody);
      body.append(el("h4", {}, "Request body", rb.required ? el("span", { class: "req" }, "required") : null));
      if (rb.description) body.append(prose(rb.description));
      body.append(contentBlock(rb.content));
    }
    if (op.responses) body.append(el("h4", {}, "Responses"), responsesTable(op.responses));
    const details = el("details", {
      class: "op", id: anchorFor(method, path),
      "data-search": (method + " " + path + " " + (op.summary || "") + " " + (op.operationId || "")).toLowerCase(),
    },
      el("summary", {}, methodBadge(method), el("span", { class: "path" }, path),
        el("span", { class: "summary-text" }, op.summary || ""), securityLabel(op)),
      body);
    return details;
  }

  // Groups operations by their first tag, in the order of the document's tag list.
  function groupByTag() {
    const groups = new Map();
    for (const tag of doc.tags || []) groups.set(tag.name, { tag, ops: [] });
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const name = (op.tags && op.tags[0]) || "other";
        if (!groups.has(name)) groups.set(name, { tag: { name }, ops: [] });
        groups.get(name).ops.push({ path, method, op, item });
      }
    }
    return [...groups.values()].filter((g) => g.ops.length);
  }

  // --- page --------------------------------------------------------------------------------

  function render() {
    const info = doc.info || {};
    document.title = (info.title || "API") + " — API reference";
    document.getElementById("title").textContent = info.title || "API";
    document.getElementById("version").textContent = info.version ? "v" + info.version + " · OpenAPI " + doc.openapi : "";

    const content = document.getElementById("content");
    const toc = document.getElementById("toc");
    content.replaceChildren();
    toc.replaceChildren();

    const intro = el("div", { class: "intro" }, prose(info.description, "text"));
    if (doc.servers && doc.servers.length) {
      intro.append(el("div", { class: "servers muted" }, "Servers: ",
        doc.servers.map((s, i) => [i ? ", " : "", el("code", {}, s.url), s.description ? " — " + s.description : ""])));
    }
    content.append(intro);

    for (const group of groupByTag()) {
      const section = el("section", { class: "tag", id: "tag-" + group.tag.name }, el("h2", {}, group.tag.name));
      if (group.tag.description) section.append(prose(group.tag.description, "text"));
      toc.append(el("h3", {}, group.tag.name));
      for (const { path, method, op, item } of group.ops) {
        section.append(operation(path, method, op, item));
        toc.append(el("a", { href: "#" + anchorFor(method, path), "data-target": anchorFor(method, path) },
          methodBadge(method), el("span", { class: "path" }, path)));
      }
      content.append(section);
    }

    const schemas = (doc.components && doc.components.schemas) || {};
    if (Object.keys(schemas).length) {
      const section = el("section", { id: "schemas" }, el("h2", {}, "Schemas"));
      toc.append(el("h3", {}, el("a", { href: "#schemas" }, "Schemas")));
      for (const name of Object.keys(schemas).sort()) {
        section.append(el("div", { class: "component", id: "schema-" + name },
          el("h3", {}, name), schemaTree(schemas[name], new Set(["#/components/schemas/" + name]))));
      }
      content.append(section);
    }
    openFromHash();
  }

  function openFromHash() {
    const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") {
      target.open = true;
      target.scrollIntoView({ block: "start" });
    }
  }

  function applyFilter(text) {
    const needle = text.trim().toLowerCase();
    for (const op of document.querySelectorAll("details.op")) {
      op.classList.toggle("hidden", needle !== "" && !op.dataset.search.includes(needle));
    }
    for (const link of document.querySelectorAll("#toc a[data-target]")) {
      const op = document.getElementById(link.dataset.target);
      link.classList.toggle("hidden", !op || op.classList.contains("hidden"));
    }
    for (const section of document.querySelectorAll("section.tag")) {
      section.classList.toggle("hidden", !section.querySelector("details.op:not(.hidden)"));
    }
  }

  async function load() {
    const status = document.getElementById("status");
    try {
      const res = await fetch("/api/v1/openapi.json", { headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error("HTTP " + res.status);
      doc = await res.json();
      render();
    } catch (err) {
      status.textContent = "Could not load the API description: " + err.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("filter").addEventListener("input", (e) => applyFilter(e.target.value));
    window.addEventListener("hashchange", openFromHash);
    load();
  });
})();
