// The console's shell: signed out it shows the login and register forms; signed in, the
// tasks (board or list), the statistics beside them, and the users for admins.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import * as api from "./api.js";
import { AuthForms } from "./auth.jsx";
import { Admin } from "./admin.jsx";
import { Stats } from "./stats.jsx";
import { Tasks } from "./tasks.jsx";
import { Notice } from "./notice.jsx";
import "uplot/dist/uPlot.min.css";
import "./styles.css";

function App() {
  const [state, setState] = useState({ phase: "starting", me: null, error: null });
  const [view, setView] = useState("board");
  // Bumped after every change to a task: the statistics reload, events having moved them.
  const [changes, setChanges] = useState(0);

  async function signedIn() {
    const me = await api.get("/api/v1/auth/me");
    setState({ phase: "in", me, error: null });
  }

  useEffect(() => {
    const off = api.onSession((on) => {
      if (!on) setState({ phase: "out", me: null, error: null });
    });
    api
      .resume()
      .then((on) => (on ? signedIn() : setState({ phase: "out", me: null, error: null })))
      .catch((error) => setState({ phase: "out", me: null, error }));
    return off;
  }, []);

  if (state.phase === "starting") return <p class="loading">Loading taskmesh…</p>;
  if (state.phase === "out") {
    return (
      <main id="main" class="signed-out">
        <h1>taskmesh</h1>
        {state.error && <Notice error={state.error} />}
        <AuthForms onSignedIn={() => signedIn().catch((error) => setState({ ...state, error }))} />
      </main>
    );
  }

  const me = state.me;
  const views = [
    ["board", "Board"],
    ["list", "List"],
    ...(me.role === "admin" ? [["users", "Users"]] : []),
  ];
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <h1>taskmesh</h1>
        <nav aria-label="Views">
          {views.map(([key, label]) => (
            <button
              type="button"
              class={view === key ? "tab current" : "tab"}
              aria-current={view === key ? "page" : undefined}
              onClick={() => setView(key)}
            >
              {label}
            </button>
          ))}
        </nav>
        <div class="who">
          <span>{me.display_name || me.email}</span>
          <button type="button" onClick={() => api.logout()}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabindex="-1" class="layout">
        <div class="work">
          {view === "users" ? (
            <Admin me={me} />
          ) : (
            <Tasks mode={view} onChange={() => setChanges((n) => n + 1)} />
          )}
        </div>
        <Stats changes={changes} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app"));
