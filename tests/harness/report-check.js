#!/usr/bin/env node
// report-check.js: open a sluice report in headless Chromium and check it
// the way a reader would see it. Speaks the DevTools protocol over
// --remote-debugging-pipe (fd 3: to Chromium, fd 4: from it), so it needs
// nothing but Node and Debian's chromium.
//
//   node report-check.js REPORT.html [--results run_results.json]
//        [--manifest manifest.json] [--screenshot out.png] [--timeout S]
//        [--ungroup 1]   (then also time drawing every node ungrouped: ungroup_ms)
//        [--select NAME] (click that node before the screenshot: for docs/report.png)
//
// Always: waits until the page sets body[data-ready], records every
// request the page makes (Network.requestWillBeSent) and fails when there
// was any but the file itself. With --results/--manifest: the DAG has one
// box per model and source (tests ride on their model as badges), and
// each result's status, and reasons (read from the side panel after a
// click), equal run_results.json's. Prints one JSON line of facts
// (ready_ms: the page's own performance.now() when it was ready).
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");

function fail(msg) {
	console.error("report-check: " + msg);
	process.exit(1);
}

const args = process.argv.slice(2);
const opt = { timeout: 30 };
for (let i = 0; i < args.length; i++) {
	if (args[i].startsWith("--")) opt[args[i].slice(2)] = args[++i];
	else opt.report = args[i];
}
if (!opt.report) fail("usage: report-check.js REPORT.html [--results F] [--manifest F] [--screenshot F]");
const fileUrl = "file://" + path.resolve(opt.report);
const browser = process.env.SLUICE_CHROMIUM || "chromium";
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-chromium-"));
const chrome = spawn(browser, [
	"--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--user-data-dir=" + profile,
	"--no-first-run", "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
	"--disable-sync", "--disable-default-apps", "--disable-extensions", "--mute-audio", "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
let stderr = "";
chrome.stderr.on("data", (d) => { stderr += d; });
chrome.on("error", (e) => fail("cannot start " + browser + ": " + e.message));

let nextId = 1, pending = new Map(), inbuf = "", requests = [];
chrome.stdio[4].on("data", (d) => {
	inbuf += d;
	let k;
	while ((k = inbuf.indexOf("\0")) >= 0) {
		const msg = JSON.parse(inbuf.slice(0, k));
		inbuf = inbuf.slice(k + 1);
		if (msg.id && pending.has(msg.id)) {
			const p = pending.get(msg.id);
			pending.delete(msg.id);
			if (msg.error) p.reject(new Error(p.method + ": " + msg.error.message));
			else p.resolve(msg.result);
		} else if (msg.method === "Network.requestWillBeSent") {
			requests.push(msg.params.request.url);
		}
	}
});
function send(method, params, sessionId) {
	const id = nextId++;
	const msg = { id, method, params: params || {} };
	if (sessionId) msg.sessionId = sessionId;
	chrome.stdio[3].write(JSON.stringify(msg) + "\0");
	return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs in the page: what the reader sees, per node.
function pageFacts(click) {
	const boxes = {}, badges = {}, reasons = {};
	document.querySelectorAll("#dag-svg g.nd[data-id]").forEach((g) => {
		boxes[g.getAttribute("data-id")] = g.getAttribute("data-status");
		if (!click) return;
		g.dispatchEvent(new MouseEvent("click", { bubbles: true }));
		reasons[g.getAttribute("data-id")] = Array.from(document.querySelectorAll("#panel ul.reasons li:not(.muted)")).map((li) => li.textContent);
	});
	document.querySelectorAll("#dag-svg [data-test]").forEach((b) => {
		badges[b.getAttribute("data-test")] = b.getAttribute("data-status");
		if (!click) return;
		b.dispatchEvent(new MouseEvent("click", { bubbles: true }));
		reasons[b.getAttribute("data-test")] = Array.from(document.querySelectorAll("#panel ul.reasons li:not(.muted)")).map((li) => li.textContent);
	});
	const rows = (id) => document.querySelectorAll("#" + id + " table tr").length - 1;
	return { boxes, badges, reasons, ready_ms: +document.body.dataset.readyMs, title: document.title,
		history_rows: Math.max(0, rows("history")), history_bars: document.querySelectorAll("#history-chart rect").length,
		history_text: document.getElementById("history") ? document.getElementById("history").textContent.slice(0, 100) : null,
		source_rows: Math.max(0, rows("sources")), changed: document.querySelectorAll("#sources .changed").length,
		links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.getAttribute("href")) };
}

async function main() {
	const timer = setTimeout(() => fail("timed out after " + opt.timeout + " s\n" + stderr.slice(-2000)), opt.timeout * 1000);
	const { targetId } = await send("Target.createTarget", { url: "about:blank" });
	const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
	await send("Network.enable", {}, sessionId);
	await send("Page.enable", {}, sessionId);
	await send("Emulation.setDeviceMetricsOverride", { width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false }, sessionId);
	await send("Page.navigate", { url: fileUrl }, sessionId);
	for (;;) {
		const r = await send("Runtime.evaluate", { expression: "document.body && document.body.dataset.ready", returnByValue: true }, sessionId);
		if (r.result.value === "1") break;
		await sleep(25);
	}
	let ungroup_ms;
	if (opt.ungroup) {
		// what drawing every node, ungrouped, costs once the page is up
		const expr = "(function () { var t = performance.now(), s = document.getElementById('group'); s.value = 'none';" +
			" s.dispatchEvent(new Event('change')); return performance.now() - t; })()";
		ungroup_ms = Math.round((await send("Runtime.evaluate", { expression: expr, returnByValue: true }, sessionId)).result.value);
	}
	await send("Performance.enable", {}, sessionId);
	const metrics = (await send("Performance.getMetrics", {}, sessionId)).metrics;
	const heap = metrics.find((m) => m.name === "JSHeapUsedSize");
	const facts = (await send("Runtime.evaluate", { expression: "(" + pageFacts.toString() + ")(" + !!opt.results + ")", returnByValue: true }, sessionId)).result.value;
	const problems = [];
	const others = requests.filter((u) => u !== fileUrl);
	if (others.length) problems.push("the page made requests besides the file: " + others.join(", "));
	if (!requests.includes(fileUrl)) problems.push("no request for the file itself was seen: the recorder is broken");
	if (opt.results) {
		const rr = JSON.parse(fs.readFileSync(opt.results, "utf8"));
		const man = opt.manifest ? JSON.parse(fs.readFileSync(opt.manifest, "utf8")) : null;
		if (man) {
			const want = Object.values(man.nodes).filter((n) => n.resource_type !== "test" || !n.attached_node).length +
				Object.keys(man.sources || {}).length;
			const got = Object.keys(facts.boxes).length;
			if (got !== want) problems.push("the DAG shows " + got + " nodes, the manifest has " + want + " models and sources");
		}
		for (const r of rr.results) {
			const seen = r.unique_id in facts.boxes ? facts.boxes[r.unique_id] : facts.badges[r.unique_id];
			if (seen !== r.status) problems.push(r.unique_id + ": the page says " + seen + ", run_results.json " + r.status);
			const want = JSON.stringify(r.reasons || []), got = JSON.stringify(facts.reasons[r.unique_id] || []);
			if (want !== got) problems.push(r.unique_id + ": reasons on the page " + got + ", in run_results.json " + want);
		}
	}
	if (opt.select) {
		const expr = "(function (n) { var g = Array.from(document.querySelectorAll('#dag-svg g.nd[data-id]')).find(function (e) {" +
			" return e.getAttribute('data-id').split('.').pop() === n; }); if (g) g.dispatchEvent(new MouseEvent('click', { bubbles: true })); return !!g; })(" +
			JSON.stringify(opt.select) + ")";
		if (!(await send("Runtime.evaluate", { expression: expr, returnByValue: true }, sessionId)).result.value) problems.push("no node " + opt.select);
	}
	if (opt.screenshot) {
		const shot = await send("Page.captureScreenshot", { format: "png" }, sessionId);
		const png = Buffer.from(shot.data, "base64");
		if (png.length < 1000 || png.slice(1, 4).toString() !== "PNG") problems.push("the screenshot is not a PNG");
		fs.writeFileSync(opt.screenshot, png);
	}
	clearTimeout(timer);
	const exited = new Promise((r) => chrome.on("exit", r));
	await send("Browser.close").catch(() => {});
	await Promise.race([exited, sleep(5000)]);
	try { fs.rmSync(profile, { recursive: true, force: true }); } catch (e) { /* a straggling child: tmp is cleaned later */ }
	console.log(JSON.stringify({ ready_ms: facts.ready_ms, ungroup_ms, js_heap_mib: heap ? +(heap.value / 1048576).toFixed(1) : null,
		requests: requests.length, nodes: Object.keys(facts.boxes).length,
		tests: Object.keys(facts.badges).length, title: facts.title, history_rows: facts.history_rows,
		history_bars: facts.history_bars, history_text: facts.history_text, source_rows: facts.source_rows,
		sources_changed: facts.changed, links: facts.links }));
	if (problems.length) fail(problems.join("\n"));
	process.exit(0);
}
main().catch((e) => fail(e.message + "\n" + stderr.slice(-2000)));
