/**
 * The console's one HTML page: a static shell with no data in it. The script (`/assets/console.js`) fills it from
 * the JSON API, building every element with `textContent`, so nothing from the database is ever parsed as HTML.
 *
 * @since 0.4.0
 */

/**
 * @since 0.4.0
 * @category assets
 */
export const html = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>eventfold console</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="#/streams">eventfold <span>console</span></a>
  <nav aria-label="Pages">
    <a href="#/streams" data-page="streams">Streams</a>
    <a href="#/feed" data-page="feed">Live feed</a>
    <a href="#/subscriptions" data-page="subscriptions">Subscriptions</a>
    <a href="#/outbox" data-page="outbox">Outbox</a>
  </nav>
  <div class="status" id="status" data-testid="status">Loading status…</div>
  <form class="token" id="token-form" autocomplete="off">
    <span id="admin-mode" class="pill" data-testid="admin-mode">…</span>
    <input id="token" type="password" placeholder="admin token" aria-label="Admin token" data-testid="token">
  </form>
</header>
<div class="flash-area" id="flash" role="status" aria-live="polite" data-testid="flash"></div>
<main id="view" data-testid="view"><noscript>The console needs JavaScript.</noscript></main>
</body>
</html>
`
