/* django-crosssell tracking: viewable impressions and clicks of recommendation widgets.
 *
 * Loaded with {% crosssell_tracking_script %} (a <script src defer> tag, no inline code, so
 * it runs under a strict Content-Security-Policy with script-src 'self'). It reads only the
 * data attributes the widgets render: data-crosssell-serve on a widget root (empty when the
 * request is not tracked), data-crosssell-item="product" and data-crosssell-position="n" on
 * each item. It sets no
 * cookie and talks only to this site's endpoint (data-endpoint on the script tag).
 *
 * - view: the widget was at least 50% visible (IntersectionObserver), once per serve;
 * - click: a link inside an item was followed (the link's signed "cs" parameter counts the
 *   click server-side too; the server keeps one per serve and product);
 * - add_to_cart: a button of a form marked data-crosssell-action="add_to_cart" (the cards'
 *   add-to-cart form) or of an element marked data-crosssell-add inside an item was used.
 * Events are batched and sent with navigator.sendBeacon when the page is hidden.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script && script.getAttribute("data-endpoint");
  if (!endpoint || !window.JSON) { return; }
  var queue = [];
  var seen = {};
  var MAX_BATCH = 50;

  function send() {
    while (queue.length) {
      var body = JSON.stringify({ events: queue.splice(0, MAX_BATCH) });
      var sent = false;
      if (navigator.sendBeacon) {
        sent = navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }));
      }
      if (!sent && window.fetch) {
        fetch(endpoint, { method: "POST", body: body, keepalive: true, credentials: "same-origin" });
      }
    }
  }

  function push(event) {
    var key = event.serve + "|" + event.type + "|" + event.product;
    if (seen[key]) { return; }
    seen[key] = true;
    queue.push(event);
    if (queue.length >= MAX_BATCH) { send(); }
  }

  function item(element) {
    var holder = element.closest("[data-crosssell-item]");
    if (!holder) { return null; }
    return {
      position: parseInt(holder.getAttribute("data-crosssell-position"), 10) || 1,
      product: holder.getAttribute("data-crosssell-item")
    };
  }

  var roots = document.querySelectorAll("[data-crosssell-serve]");
  var observer = null;
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting && entry.intersectionRatio >= 0.5) {
          push({ serve: entry.target.getAttribute("data-crosssell-serve"), type: "view", product: "", position: 0 });
          observer.unobserve(entry.target);
        }
      });
    }, { threshold: [0.5] });
  }
  Array.prototype.forEach.call(roots, function (root) {
    var serve = root.getAttribute("data-crosssell-serve");
    if (!serve) { return; }
    if (observer) { observer.observe(root); }
    root.addEventListener("click", function (event) {
      var target = event.target.closest("a, button, input[type=submit], [data-crosssell-add]");
      var found = target && item(target);
      if (!found) { return; }
      var adds = target.closest('[data-crosssell-add], [data-crosssell-action="add_to_cart"]');
      var type = adds && target.tagName !== "A" ? "add_to_cart" : "click";
      push({ serve: serve, type: type, product: found.product, position: found.position });
      send();
    });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { send(); }
  });
  window.addEventListener("pagehide", send);
})();
