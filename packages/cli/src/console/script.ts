/**
 * The console's browser script, served as `/assets/console.js`: a small hash-routed page over the JSON API, with no
 * dependency. Safe by construction: every value from the server becomes a text node (`textContent`,
 * `createTextNode`) or an attribute set with `setAttribute`; links it builds always start with `#/`. It never uses
 * `innerHTML`, `eval` or inline handlers, and the Content-Security-Policy forbids them anyway.
 *
 * @since 0.4.0
 */

/**
 * @since 0.4.0
 * @category assets
 */
export const script = String.raw`"use strict";
(function () {
  var token = "";
  var session = { adminActions: false, schema: "" };
  var leaving = [];

  // -- DOM helpers: text only ------------------------------------------------------------------------------------

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function s(tag, attrs, children) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) return;
      if (key === "text") node.textContent = String(value);
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
  }

  function append(node, children) {
    if (children === undefined || children === null) return;
    (Array.isArray(children) ? children : [children]).forEach(function (child) {
      if (child === undefined || child === null || child === false) return;
      node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    });
  }

  function byId(id) { return document.getElementById(id); }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // -- formatting ------------------------------------------------------------------------------------------------

  function time(iso) {
    if (!iso) return "–";
    var date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").slice(0, 19);
  }

  function position(p) { return p ? p.transactionId + ":" + p.globalPosition : "–"; }

  function pretty(value) {
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function oneLine(value, max) {
    var text;
    try { text = JSON.stringify(value); } catch (e) { text = String(value); }
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    var seconds = Math.round(ms / 1000);
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function route(name, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
    });
    var text = query.toString();
    return "#/" + name + (text ? "?" + text : "");
  }

  function streamLink(tenantId, streamType, streamId, label) {
    return h("a", {
      href: route("stream", { tenant: tenantId, type: streamType, id: streamId }),
      "data-testid": "stream-link"
    }, label === undefined ? streamType + "/" + streamId : label);
  }

  // -- the API ---------------------------------------------------------------------------------------------------

  function api(path, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.admin && token) headers.Authorization = "Bearer " + token;
    return fetch(path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: "no-store",
      credentials: "same-origin"
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) {
          body = { _tag: "UnreadableResponse", message: text.slice(0, 300) };
        }
        return { ok: response.ok, status: response.status, body: body };
      });
    }, function (error) {
      return { ok: false, status: 0, body: { _tag: "NetworkError", message: String(error && error.message) } };
    });
  }

  function describeError(result) {
    var body = result.body || {};
    return (body._tag || "Error") + " (HTTP " + result.status + "): " + (body.message || "no details");
  }

  function flash(kind, text) {
    var area = byId("flash");
    clear(area);
    area.appendChild(h("div", { "class": "flash " + kind, "data-kind": kind, "data-testid": "flash-" + kind }, text));
  }

  function failure(container, result) {
    clear(container);
    container.appendChild(h("div", { "class": "flash error", "data-testid": "load-error" }, describeError(result)));
  }

  // An admin action: POST with the token; the outcome goes to the flash area.
  function act(path, body, done) {
    return api(path, { method: "POST", body: body, admin: true }).then(function (result) {
      if (result.ok) flash("ok", done(result.body));
      else flash("error", "Refused: " + describeError(result));
      return result;
    });
  }

  // A button that asks for a second click (within 5 s) before it acts; the armed state survives re-renders.
  var armedUntil = {};
  function confirmButton(key, label, confirmLabel, testid, run) {
    var button = h("button", { type: "button", "class": "danger", "data-testid": testid }, label);
    function show() {
      var armed = (armedUntil[key] || 0) > Date.now();
      button.textContent = armed ? confirmLabel : label;
      button.classList.toggle("armed", armed);
    }
    button.addEventListener("click", function () {
      if ((armedUntil[key] || 0) > Date.now()) {
        delete armedUntil[key];
        show();
        run();
        return;
      }
      armedUntil[key] = Date.now() + 5000;
      show();
      setTimeout(show, 5100);
    });
    show();
    return button;
  }

  function table(columns, rows, rowAttrs) {
    return h("table", {}, [
      h("thead", {}, h("tr", {}, columns.map(function (c) { return h("th", { "class": c.num ? "num" : null }, c.title); }))),
      h("tbody", {}, rows.map(function (row) {
        return h("tr", rowAttrs ? rowAttrs(row) : {}, columns.map(function (c) {
          return h("td", { "class": c.cls || (c.num ? "num" : null) }, c.cell(row));
        }));
      }))
    ]);
  }

  function facts(entries) {
    return h("dl", { "class": "facts" }, entries.map(function (e) {
      return h("div", { "data-testid": e.testid }, [h("dt", {}, e.label), h("dd", {}, e.value)]);
    }));
  }

  function pill(text, kind) { return h("span", { "class": "pill " + (kind || text) }, text); }

  // -- header: status and admin mode -----------------------------------------------------------------------------

  function loadStatus() {
    api("/api/status").then(function (result) {
      var bar = byId("status");
      clear(bar);
      if (!result.ok) { bar.appendChild(h("span", { "class": "problem" }, describeError(result))); return; }
      var st = result.body;
      append(bar, [
        h("b", {}, st.server.database), " on PostgreSQL " + st.server.version.split(" ")[0] + " · schema ",
        h("b", {}, st.schema), " · ", h("b", {}, st.events === null ? "–" : st.events),
        st.eventsEstimated ? " events (est.) · " : " events · ", h("b", {}, st.streams === null ? "–" : st.streams),
        " streams · head ", h("b", { "data-testid": "head" }, position(st.head))
      ]);
      if (st.problems.length > 0) {
        bar.appendChild(h("span", { "class": "problem", title: st.problems.map(function (p) { return p.message; }).join("\n") },
          " · " + st.problems.length + (st.problems.length === 1 ? " problem" : " problems")));
      }
    });
  }

  function showAdminMode() {
    var mode = byId("admin-mode");
    var input = byId("token");
    if (!session.adminActions) {
      mode.textContent = "read-only";
      mode.className = "pill";
      input.disabled = true;
      input.placeholder = "no token configured";
    } else {
      mode.textContent = token ? "admin" : "read-only until a token is given";
      mode.className = "pill " + (token ? "live" : "idle");
    }
  }

  // -- pages -----------------------------------------------------------------------------------------------------

  var pages = {};

  pages.streams = function (main, params) {
    var fields = [["type", "Stream type"], ["id", "Stream id"], ["tenant", "Tenant"], ["prefix", "Id prefix"]];
    var inputs = {};
    var form = h("form", { "class": "search", "data-testid": "stream-search" }, fields.map(function (f) {
      inputs[f[0]] = h("input", { name: f[0], value: params.get(f[0]) || "", "data-testid": "search-" + f[0] });
      return h("label", {}, [f[1], inputs[f[0]]]);
    }).concat([h("button", { type: "submit", "data-testid": "search-submit" }, "Search")]));
    var results = h("div", { "data-testid": "stream-results" }, h("p", { "class": "muted" }, "Searching…"));
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var next = {};
      fields.forEach(function (f) { next[f[0]] = inputs[f[0]].value.trim(); });
      var target = route("streams", next);
      if (location.hash === target) render(); else location.hash = target;
    });
    append(main, [h("h1", {}, "Streams"), form, results]);

    var rows = [];
    function load(after) {
      var query = new URLSearchParams();
      fields.forEach(function (f) { if (params.get(f[0])) query.set(f[0], params.get(f[0])); });
      if (after) { query.set("afterTenant", after.tenantId); query.set("afterType", after.streamType); query.set("afterId", after.streamId); }
      api("/api/streams?" + query.toString()).then(function (result) {
        if (!result.ok) { failure(results, result); return; }
        rows = rows.concat(result.body.streams);
        clear(results);
        if (rows.length === 0) { results.appendChild(h("div", { "class": "empty" }, "No stream matches.")); return; }
        results.appendChild(table([
          { title: "Tenant", cell: function (r) { return r.tenantId; } },
          { title: "Type", cell: function (r) { return r.streamType; } },
          { title: "Id", cell: function (r) { return streamLink(r.tenantId, r.streamType, r.streamId, r.streamId); } },
          { title: "Version", num: true, cell: function (r) { return r.version; } },
          { title: "State", cell: function (r) { return pill(r.state); } },
          { title: "Updated", cell: function (r) { return time(r.updatedAt); } }
        ], rows, function () { return { "data-testid": "stream-row" }; }));
        if (result.body.next) {
          var next = result.body.next;
          results.appendChild(h("div", { "class": "pager" },
            h("button", { type: "button", "class": "secondary", onclick: function () { load(next); } }, "More streams")));
        }
      });
    }
    load(null);
  };

  pages.stream = function (main, params) {
    var ref = { tenant: params.get("tenant") || "", type: params.get("type") || "", id: params.get("id") || "" };
    var direction = params.get("direction") === "backward" ? "backward" : "forward";
    append(main, h("h1", {}, ["Stream ", h("span", { "class": "mono", "data-testid": "stream-title" }, ref.type + "/" + ref.id)]));
    var body = h("div", {}, h("p", { "class": "muted" }, "Loading…"));
    main.appendChild(body);
    var query = new URLSearchParams({ type: ref.type, id: ref.id });
    if (ref.tenant) query.set("tenant", ref.tenant);
    if (params.get("from")) query.set("from", params.get("from"));
    query.set("direction", direction);
    api("/api/stream?" + query.toString()).then(function (result) {
      if (!result.ok) { failure(body, result); return; }
      clear(body);
      var detail = result.body;
      var st = detail.stream;
      body.appendChild(h("div", { "class": "panel" }, facts([
        { label: "Tenant", value: st.tenantId, testid: "stream-tenant" },
        { label: "Version", value: String(st.version), testid: "stream-version" },
        { label: "State", value: pill(st.state) },
        { label: "First version", value: String(st.firstVersion) },
        { label: "Created", value: time(st.createdAt) },
        { label: "Updated", value: time(st.updatedAt) },
        { label: "Snapshot", value: detail.snapshot ? "v" + detail.snapshot.version + " (schema " + detail.snapshot.schemaVersion + ")" : "none" }
      ])));
      var order = { tenant: st.tenantId, type: st.streamType, id: st.streamId };
      body.appendChild(h("div", { "class": "toolbar" }, [
        h("span", { "class": "muted" }, detail.events.length + (detail.events.length === 1 ? " event, " : " events, ") + (direction === "forward" ? "oldest first" : "newest first")),
        h("a", { href: route("stream", Object.assign({}, order, { direction: direction === "forward" ? "backward" : "forward" })) },
          direction === "forward" ? "Newest first" : "Oldest first")
      ]));
      detail.events.forEach(function (e) { body.appendChild(eventCard(e)); });
      if (detail.nextVersion !== null) {
        body.appendChild(h("div", { "class": "pager" }, h("a", {
          href: route("stream", Object.assign({}, order, { direction: direction, from: detail.nextVersion }))
        }, "Next page")));
      }
    });
  };

  function eventCard(e) {
    return h("article", { "class": "event", "data-testid": "event", "data-version": e.version }, [
      h("header", {}, [
        h("span", { "class": "version" }, "v" + e.version),
        h("span", { "class": "type", "data-testid": "event-type" }, e.type),
        h("span", { "class": "meta mono" }, e.eventId),
        h("span", { "class": "meta" }, time(e.recordedAt)),
        h("span", { "class": "meta" }, "position " + position(e.position)),
        e.schemaVersion !== 1 ? h("span", { "class": "meta" }, "schema v" + e.schemaVersion) : null
      ]),
      h("div", { "class": "body" }, [
        h("section", {}, [h("h3", {}, "Payload"), h("pre", { "data-testid": "payload" }, pretty(e.payload))]),
        h("section", {}, [h("h3", {}, "Metadata"), h("pre", { "data-testid": "metadata" }, pretty(e.metadata))])
      ])
    ]);
  }

  pages.feed = function (main, params) {
    var state = h("span", { "class": "pill idle", "data-testid": "feed-state", "data-state": "connecting" }, "connecting");
    var count = h("span", { "class": "muted" }, "");
    var list = h("div", { "class": "feed", "data-testid": "feed-list" });
    var empty = h("div", { "class": "empty", "data-testid": "feed-empty" }, "Waiting for new events… they appear here as they are appended.");
    var tenant = h("input", { name: "tenant", value: params.get("tenant") || "", placeholder: "any" });
    var type = h("input", { name: "type", value: params.get("type") || "", placeholder: "any" });
    var form = h("form", { "class": "search" }, [
      h("label", {}, ["Tenant", tenant]), h("label", {}, ["Stream type", type]),
      h("button", { type: "submit", "class": "secondary" }, "Filter")
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      location.hash = route("feed", { tenant: tenant.value.trim(), type: type.value.trim() });
    });
    append(main, [h("h1", {}, "Live feed"), form, h("div", { "class": "toolbar" }, [state, count]), empty, list]);

    var query = new URLSearchParams();
    if (params.get("tenant")) query.set("tenant", params.get("tenant"));
    if (params.get("type")) query.set("type", params.get("type"));
    var source = new EventSource("/api/feed/live" + (query.toString() ? "?" + query.toString() : ""));
    var seen = 0;
    function setState(name) {
      state.textContent = name;
      state.className = "pill " + name;
      state.setAttribute("data-state", name);
    }
    source.addEventListener("ready", function () { setState("live"); });
    source.addEventListener("events", function (message) {
      var events = JSON.parse(message.data);
      events.forEach(function (e) {
        list.insertBefore(feedRow(e), list.firstChild);
        seen += 1;
      });
      while (list.childNodes.length > 500) list.removeChild(list.lastChild);
      if (seen > 0 && empty.parentNode) empty.parentNode.removeChild(empty);
      count.textContent = seen + (seen === 1 ? " new event" : " new events") + " since the page opened";
    });
    source.addEventListener("problem", function (message) {
      var problem = JSON.parse(message.data);
      flash("error", "Reading the feed failed: " + problem._tag + ": " + problem.message);
    });
    source.addEventListener("error", function () { setState("reconnecting"); });
    leaving.push(function () { source.close(); });
  };

  function feedRow(e) {
    return h("div", { "class": "feed-row fresh", "data-testid": "feed-event", "data-event-id": e.eventId }, [
      h("span", { "class": "muted" }, time(e.recordedAt)),
      h("span", { "class": "mono muted" }, position(e.position)),
      h("span", {}, [streamLink(e.tenantId, e.streamType, e.streamId), e.tenantId === "default" ? null : h("span", { "class": "muted" }, " (" + e.tenantId + ")")]),
      h("span", {}, [h("b", { "data-testid": "feed-event-type" }, e.type), h("span", { "class": "muted" }, " v" + e.version)]),
      h("span", { "class": "preview mono", title: oneLine(e.payload, 2000) }, oneLine(e.payload, 240))
    ]);
  }

  function lagChart(history) {
    var width = 180, height = 40;
    var chart = s("svg", { "class": "chart", width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img" });
    var lags = history.map(function (p) { return p[1]; });
    var max = Math.max.apply(null, [1].concat(lags));
    chart.appendChild(s("title", {}, history.length === 0 ? "no samples yet" :
      "lag over the last " + duration(history[history.length - 1][0] - history[0][0]) + ", up to " + max + " events"));
    chart.appendChild(s("line", { "class": "base", x1: 0, y1: height - 1, x2: width, y2: height - 1 }));
    if (history.length === 0) return chart;
    var t0 = history[0][0];
    var span = Math.max(1, history[history.length - 1][0] - t0);
    var points = history.map(function (p) {
      var x = history.length === 1 ? width : 1 + ((p[0] - t0) / span) * (width - 2);
      var y = height - 2 - (p[1] / max) * (height - 6);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    if (history.length === 1) points.unshift("0," + points[0].split(",")[1]);
    var first = points[0].split(",")[0], last = points[points.length - 1].split(",")[0];
    chart.appendChild(s("polygon", { "class": "area", points: first + "," + (height - 1) + " " + points.join(" ") + " " + last + "," + (height - 1) }));
    chart.appendChild(s("polyline", { "class": "line", points: points.join(" ") }));
    return chart;
  }

  pages.subscriptions = function (main) {
    var body = h("div", {}, h("p", { "class": "muted" }, "Loading…"));
    append(main, [h("h1", {}, "Subscriptions"), body]);
    function load() {
      return api("/api/subscriptions").then(function (result) {
        if (!result.ok) { failure(body, result); return; }
        clear(body);
        var subs = result.body.subscriptions;
        var letters = result.body.deadLetters;
        if (subs.length === 0) body.appendChild(h("div", { "class": "empty" }, "No subscription has stored a checkpoint yet."));
        else body.appendChild(table([
          { title: "Subscription", cell: function (r) { return h("b", {}, r.subscription); } },
          { title: "Tenant scope", cell: function (r) { return r.tenantId; } },
          { title: "Status", cell: function (r) { return [pill(r.status), " ", r.running ? pill("running") : pill("idle")]; } },
          { title: "Owner", cell: function (r) { return r.owner === null ? "–" : [h("span", { "class": "mono" }, r.owner), h("div", { "class": "muted" }, "lease until " + time(r.leaseUntil))]; } },
          { title: "Checkpoint", cell: function (r) { return h("span", { "class": "mono" }, position(r.position)); } },
          { title: "Lag", num: true, cell: function (r) { return h("span", { "data-testid": "lag" }, r.lag); } },
          { title: "Lag over time", cell: function (r) { return lagChart(r.lagHistory); } },
          { title: "Dead letters", num: true, cell: function (r) { return r.deadLetters; } },
          { title: "", cell: function (r) {
            return confirmButton(JSON.stringify([r.subscription, r.tenantId]), "Reset", "Click again to replay from the start", "reset", function () {
              act("/api/subscriptions/reset", { subscription: r.subscription, tenantId: r.tenantId }, function (move) {
                return "Reset " + move.subscription + ": " + move.events + " events to replay";
              }).then(load);
            });
          } }
        ], subs, function (r) { return { "data-testid": "subscription-row", "data-subscription": r.subscription }; }));

        body.appendChild(h("h2", {}, "Dead letters"));
        if (letters.length === 0) { body.appendChild(h("div", { "class": "empty", "data-testid": "no-dead-letters" }, "No parked events.")); return; }
        body.appendChild(table([
          { title: "Subscription", cell: function (d) { return d.subscription + (d.tenantId === "*" ? "" : " (" + d.tenantId + ")"); } },
          { title: "Event", cell: function (d) { return [h("b", {}, d.eventType), h("div", { "class": "mono muted" }, d.eventId)]; } },
          { title: "Stream", cell: function (d) { return streamLink(d.eventTenantId, d.streamType, d.streamId); } },
          { title: "Error", cls: "error-text", cell: function (d) { return d.error; } },
          { title: "Attempts", num: true, cell: function (d) { return d.attempts; } },
          { title: "Parked", cell: function (d) { return time(d.parkedAt); } },
          { title: "", cell: function (d) {
            return h("button", { type: "button", "data-testid": "retry-dead-letter", onclick: function () {
              act("/api/dead-letters/retry", { subscription: d.subscription, tenantId: d.tenantId, eventId: d.eventId }, function (move) {
                return "Retrying " + d.eventType + " " + d.eventId + ": " + move.subscription + " replays " + move.events + " events from " + position(move.to);
              }).then(load);
            } }, "Retry");
          } }
        ], letters, function (d) { return { "data-testid": "dead-letter", "data-event-id": d.eventId }; }));
      });
    }
    load();
    var timer = setInterval(load, 3000);
    leaving.push(function () { clearInterval(timer); });
  };

  pages.outbox = function (main) {
    var body = h("div", {}, h("p", { "class": "muted" }, "Loading…"));
    append(main, [h("h1", {}, "Outbox"), body]);
    function load() {
      return api("/api/outbox").then(function (result) {
        if (!result.ok) { failure(body, result); return; }
        clear(body);
        var st = result.body.stats;
        var failures = result.body.failures;
        body.appendChild(h("div", { "class": "panel" }, facts([
          { label: "Pending", value: String(st.pending), testid: "outbox-pending" },
          { label: "Oldest pending", value: duration(st.oldestPendingMs) },
          { label: "Failed", value: String(st.failed), testid: "outbox-failed" },
          { label: "Published", value: String(st.published) },
          { label: "Last error", value: st.lastError === null ? "–" : h("span", { "class": "error-text", "data-testid": "outbox-last-error" }, st.lastError) }
        ])));
        body.appendChild(h("div", { "class": "toolbar" }, [
          h("h2", {}, "Failed rows"),
          failures.length === 0 ? null : h("button", { type: "button", "data-testid": "outbox-retry-all", onclick: function () {
            act("/api/outbox/retry", {}, function (r) { return "Put " + r.retried + " failed rows back to pending"; }).then(load);
          } }, "Retry all failed rows")
        ]));
        if (failures.length === 0) { body.appendChild(h("div", { "class": "empty", "data-testid": "no-outbox-failures" }, "No failed rows.")); return; }
        body.appendChild(table([
          { title: "Row", num: true, cell: function (f) { return f.id; } },
          { title: "Stream", cell: function (f) { return streamLink(f.tenantId, f.streamType, f.streamId); } },
          { title: "Event", cell: function (f) { return [h("b", {}, f.eventType), " v" + f.version, h("div", { "class": "mono muted" }, f.eventId)]; } },
          { title: "Retries", num: true, cell: function (f) { return f.retryCount; } },
          { title: "Last error", cls: "error-text", cell: function (f) { return f.lastError === null ? "–" : f.lastError; } },
          { title: "Created", cell: function (f) { return time(f.createdAt); } },
          { title: "", cell: function (f) {
            return h("button", { type: "button", "class": "secondary", onclick: function () {
              act("/api/outbox/retry", { streamType: f.streamType, streamId: f.streamId }, function (r) {
                return "Put " + r.retried + " failed rows of " + f.streamType + "/" + f.streamId + " back to pending";
              }).then(load);
            } }, "Retry stream");
          } }
        ], failures, function () { return { "data-testid": "outbox-failure" }; }));
      });
    }
    load();
    var timer = setInterval(load, 5000);
    leaving.push(function () { clearInterval(timer); });
  };

  // -- routing ---------------------------------------------------------------------------------------------------

  function current() {
    var raw = location.hash.replace(/^#\/?/, "");
    var at = raw.indexOf("?");
    var name = at < 0 ? raw : raw.slice(0, at);
    return { name: Object.prototype.hasOwnProperty.call(pages, name) ? name : "streams", params: new URLSearchParams(at < 0 ? "" : raw.slice(at + 1)) };
  }

  function render() {
    leaving.forEach(function (stop) { stop(); });
    leaving = [];
    var page = current();
    document.querySelectorAll("header.top nav a").forEach(function (a) {
      a.classList.toggle("current", a.getAttribute("data-page") === page.name || (page.name === "stream" && a.getAttribute("data-page") === "streams"));
    });
    var main = byId("view");
    clear(main);
    main.setAttribute("data-page", page.name);
    pages[page.name](main, page.params);
  }

  function start() {
    byId("token").addEventListener("input", function (event) { token = event.target.value.trim(); showAdminMode(); });
    byId("token-form").addEventListener("submit", function (event) { event.preventDefault(); });
    window.addEventListener("hashchange", function () { byId("flash").textContent = ""; render(); });
    api("/api/session").then(function (result) {
      if (result.ok) session = result.body;
      showAdminMode();
    });
    loadStatus();
    setInterval(loadStatus, 10000);
    render();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
`
