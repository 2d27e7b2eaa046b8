// Admins: every account, with disable/enable and promote/demote.
import { useEffect, useState } from "preact/hooks";

import * as api from "./api.js";
import { Notice } from "./notice.jsx";

export function Admin({ me }) {
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState({ items: [], next_cursor: null });
  const [error, setError] = useState(null);
  const [reload, setReload] = useState(0);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    api
      .get(`/api/v1/auth/users${api.query({ limit: 20, cursor })}`)
      .then((data) => {
        setPage(data);
        setError(null);
      })
      .catch(setError);
  }, [cursor, reload]);

  async function change(user, body) {
    try {
      await api.request("PATCH", `/api/v1/auth/users/${user.id}`, { body });
      setReload((n) => n + 1);
    } catch (caught) {
      setError(caught);
    }
  }

  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <Notice error={error} />
      <div class="table-wrap">
        <table class="users">
          <caption class="sr">Accounts, oldest first</caption>
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col">State</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {page.items.map((user) => (
              <tr data-user={user.id}>
                <td data-label="Email">{user.email}</td>
                <td data-label="Role">{user.role}</td>
                <td data-label="State">{user.disabled ? "disabled" : "active"}</td>
                <td data-label="Actions" class="actions">
                  {user.id === me.id ? (
                    <span>you</span>
                  ) : (
                    <>
                      <button type="button" onClick={() => change(user, { disabled: !user.disabled })}>
                        {user.disabled ? "Enable" : "Disable"}
                        <span class="sr"> {user.email}</span>
                      </button>
                      <button
                        type="button"
                        onClick={() => change(user, { role: user.role === "admin" ? "user" : "admin" })}
                      >
                        {user.role === "admin" ? "Demote" : "Promote"}
                        <span class="sr"> {user.email}</span>
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="User pages">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" disabled={!page.next_cursor} onClick={() => setCursors([...cursors, page.next_cursor])}>
          Next page
        </button>
      </nav>
    </section>
  );
}
