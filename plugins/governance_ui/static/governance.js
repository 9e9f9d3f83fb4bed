// The Governance pages as an Airflow 3 React app (plugins/governance_ui.py, react_apps): rendered in the Airflow UI
// itself, not in a sandboxed iframe, so that links into Airflow (DAGs, runs) navigate like the UI's own links.
//
// No build step: Airflow's UI exposes its React and React Router as globals for plugins (globalThis.React,
// globalThis.ReactRouterDOM). The component fetches the server-rendered page (/governance/<path>, same origin, the
// UI's session cookie), strips anything executable, shows it in a shadow root (its styles stay inside), and handles
// clicks: a Governance page stays in this view (/plugin/governance/<path>), an Airflow page goes through the router,
// an archived report opens as a page of its own.
const React = globalThis.React;
const { useNavigate, useParams } = globalThis.ReactRouterDOM;

const ROUTE = "governance"; // url_route of the react app: the UI shows it at /plugin/governance/<path>
const APP = "/governance"; // url_prefix of the FastAPI app that renders the pages

function basePath() {
  // The UI's base URL path ("" or "/airflow"), as the UI itself computes it from <base href>.
  return new URL(document.baseURI).pathname.replace(/\/$/u, "");
}

function clean(doc) {
  // The pages carry no script (autoescaped templates, a no-script CSP when served bare); drop any anyway.
  doc.querySelectorAll("script, iframe, object, embed").forEach((el) => el.remove());
  doc.querySelectorAll("*").forEach((el) => {
    for (const attr of Array.from(el.attributes)) {
      const value = attr.value.trim().toLowerCase();
      if (attr.name.toLowerCase().startsWith("on") || value.startsWith("javascript:")) el.removeAttribute(attr.name);
    }
  });
  return doc;
}

function target(href) {
  // What a click on href does: ["view", path] inside this view, ["page", url] a page load, ["route", path] the
  // Airflow router, or null for a link the browser handles (another origin).
  const url = new URL(href, window.location.href);
  if (url.origin !== window.location.origin) return null;
  const base = basePath();
  let path = url.pathname.startsWith(base + "/") ? url.pathname.slice(base.length) : url.pathname;
  // Archived reports and package search answers (HTML, CSV) are documents of their own.
  if (path.startsWith(APP + "/reports/") || /^\/governance\/searches\/[^/]+\/results\.\w+$/u.test(path)) {
    return ["page", url.href];
  }
  if (path === APP || path.startsWith(APP + "/")) {
    return ["view", `/plugin/${ROUTE}${path.slice(APP.length) || "/"}${url.search}${url.hash}`];
  }
  return ["route", `${path}${url.search}${url.hash}`];
}

function Governance() {
  const navigate = useNavigate();
  const rest = useParams()["*"] || "";
  const host = React.useRef(null);
  const [error, setError] = React.useState(null);

  React.useEffect(() => {
    const root = host.current.shadowRoot || host.current.attachShadow({ mode: "open" });
    const onClick = (event) => {
      const link = event.composedPath().find((el) => el.tagName === "A" && el.hasAttribute("href"));
      if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
      const where = target(link.getAttribute("href"));
      if (where === null) return;
      event.preventDefault();
      if (where[0] === "page") window.location.assign(where[1]);
      else navigate(where[1]);
    };
    root.addEventListener("click", onClick);
    return () => root.removeEventListener("click", onClick);
  }, [navigate]);

  React.useEffect(() => {
    let live = true;
    const url = `${basePath()}${APP}/${rest}${window.location.search}`;
    // The page in the Airflow UI's language (its language switcher keeps it in localStorage), else the browser's.
    const language = globalThis.localStorage?.getItem("i18nextLng") || document.documentElement.lang
      || globalThis.navigator?.language || "en";
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html", "Accept-Language": language } })
      .then(async (resp) => {
        if (resp.redirected && new URL(resp.url).pathname.includes("/auth/login")) {
          window.location.assign(resp.url); // the session ended: Airflow's login page, then back here
          return;
        }
        const html = await resp.text();
        if (!live) return;
        if (!resp.ok) {
          setError(`${resp.status}: ${html.slice(0, 200)}`);
          return;
        }
        const doc = clean(new DOMParser().parseFromString(html, "text/html"));
        const root = host.current.shadowRoot;
        const styles = Array.from(doc.head.querySelectorAll("style"));
        // The page's body rules apply to this view's box (a shadow root has no body).
        styles.forEach((style) => { style.textContent = style.textContent.replace(/(^|\})\s*body\s*\{/gu, "$1:host{display:block;"); });
        root.replaceChildren(...styles, ...Array.from(doc.body.childNodes));
        setError(null);
      })
      .catch((exc) => live && setError(String(exc)));
    return () => {
      live = false;
    };
  }, [rest]);

  return React.createElement(
    "div",
    { style: { height: "100%", overflow: "auto" } },
    error ? React.createElement("p", { role: "alert" }, `Governance page failed to load (${error})`) : null,
    React.createElement("div", { ref: host, "data-testid": "governance-view" }),
  );
}

globalThis.AirflowPlugin = Governance;
