// Log in, or register and then log in.
import { useState } from "preact/hooks";

import * as api from "./api.js";
import { Notice } from "./notice.jsx";

export function AuthForms({ onSignedIn }) {
  const [mode, setMode] = useState("login");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  async function submit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const email = form.get("email");
    const password = form.get("password");
    setBusy(true);
    setError(null);
    try {
      if (mode === "register") await api.register(email, password, form.get("display_name"));
      await api.login(email, password);
      onSignedIn();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }

  const registering = mode === "register";
  return (
    <section class="card auth" aria-labelledby="auth-title">
      <h2 id="auth-title">{registering ? "Create an account" : "Log in"}</h2>
      <form onSubmit={submit}>
        <label for="email">Email</label>
        <input id="email" name="email" type="email" autocomplete="email" required />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete={registering ? "new-password" : "current-password"}
          minlength={registering ? 10 : undefined}
          required
        />
        {registering && (
          <>
            <label for="display_name">Display name (optional)</label>
            <input id="display_name" name="display_name" autocomplete="nickname" maxlength="100" />
          </>
        )}
        <Notice error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {registering ? "Register" : "Log in"}
        </button>
      </form>
      <button
        type="button"
        class="link"
        onClick={() => {
          setMode(registering ? "login" : "register");
          setError(null);
        }}
      >
        {registering ? "I have an account: log in" : "New here? Create an account"}
      </button>
    </section>
  );
}
