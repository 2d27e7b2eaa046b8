// The caller's tasks: a board by status, or a filtered list paged by cursor.
import { useEffect, useState } from "preact/hooks";

import * as api from "./api.js";
import { EditTask, NewTask, PRIORITIES, STATUSES } from "./editor.jsx";
import { Notice } from "./notice.jsx";

const tagOf = (task) => `"${task.version}"`;
const BOARD_LIMIT = 50;
const PAGE = 10;

function TaskCard({ task, onAct }) {
  const [sure, setSure] = useState(false);
  const next = task.status === "todo" ? ["in_progress", "Start"] : null;
  return (
    <li class={`task prio-${task.priority}`} data-task={task.id}>
      <div class="task-head">
        <span class="title">{task.title}</span>
        <span class="badge">{task.priority}</span>
      </div>
      {task.description && <p class="desc">{task.description}</p>}
      <p class="meta">
        {STATUSES.find(([s]) => s === task.status)[1]}
        {task.due_date && ` · due ${task.due_date.slice(0, 10)}`}
        {task.tags.length > 0 && ` · ${task.tags.map((t) => `#${t}`).join(" ")}`}
      </p>
      <div class="actions" role="group" aria-label={`Actions for ${task.title}`}>
        {next && (
          <button type="button" onClick={() => onAct("status", task, next[0])}>
            {next[1]}
          </button>
        )}
        {task.status !== "done" ? (
          <button type="button" onClick={() => onAct("status", task, "done")}>
            Complete<span class="sr"> {task.title}</span>
          </button>
        ) : (
          <button type="button" onClick={() => onAct("status", task, "todo")}>
            Reopen<span class="sr"> {task.title}</span>
          </button>
        )}
        <button type="button" onClick={() => onAct("edit", task)}>
          Edit<span class="sr"> {task.title}</span>
        </button>
        {sure ? (
          <button type="button" class="danger" onClick={() => onAct("delete", task)}>
            Really delete<span class="sr"> {task.title}</span>?
          </button>
        ) : (
          <button type="button" class="danger" onClick={() => setSure(true)}>
            Delete<span class="sr"> {task.title}</span>
          </button>
        )}
      </div>
    </li>
  );
}

function Board({ reload, onAct }) {
  const [columns, setColumns] = useState({});
  const [error, setError] = useState(null);
  useEffect(() => {
    Promise.all(
      STATUSES.map(([status]) =>
        api.get(`/api/v1/tasks${api.query({ status, limit: BOARD_LIMIT })}`).then((page) => [status, page.items]),
      ),
    )
      .then((pairs) => {
        setColumns(Object.fromEntries(pairs));
        setError(null);
      })
      .catch(setError);
  }, [reload]);
  return (
    <>
      <Notice error={error} />
      <div class="board">
        {STATUSES.map(([status, label]) => (
          <section class="column" aria-labelledby={`col-${status}`} data-status={status}>
            <h3 id={`col-${status}`}>
              {label} <span class="count">{(columns[status] || []).length}</span>
            </h3>
            <ul class="tasks">
              {(columns[status] || []).map((task) => (
                <TaskCard task={task} onAct={onAct} />
              ))}
            </ul>
          </section>
        ))}
      </div>
    </>
  );
}

function List({ reload, onAct }) {
  const [filters, setFilters] = useState({ status: "", priority: "", tag: "", q: "" });
  const [cursors, setCursors] = useState([null]); // the cursor of each page seen so far
  const [page, setPage] = useState({ items: [], next_cursor: null });
  const [error, setError] = useState(null);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    api
      .get(`/api/v1/tasks${api.query({ ...filters, limit: PAGE, cursor })}`)
      .then((data) => {
        setPage(data);
        setError(null);
      })
      .catch(setError);
  }, [reload, filters, cursor]);

  function filter(event) {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.currentTarget));
    setFilters({ status: data.status, priority: data.priority, tag: data.tag.trim(), q: data.q.trim() });
    setCursors([null]);
  }

  return (
    <>
      <form class="filters card" onSubmit={filter} aria-label="Filter tasks">
        <div>
          <label for="f-status">Status</label>
          <select id="f-status" name="status">
            <option value="">any</option>
            {STATUSES.map(([s, label]) => (
              <option value={s}>{label}</option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-priority">Priority</label>
          <select id="f-priority" name="priority">
            <option value="">any</option>
            {PRIORITIES.map((p) => (
              <option value={p}>{p}</option>
            ))}
          </select>
        </div>
        <div>
          <label for="f-tag">Tag</label>
          <input id="f-tag" name="tag" maxlength="50" />
        </div>
        <div>
          <label for="f-q">Text</label>
          <input id="f-q" name="q" type="search" maxlength="200" />
        </div>
        <button type="submit">Apply filters</button>
      </form>
      <Notice error={error} />
      <ul class="tasks list" aria-label="Tasks">
        {page.items.map((task) => (
          <TaskCard task={task} onAct={onAct} />
        ))}
      </ul>
      {page.items.length === 0 && !error && <p class="empty">No tasks match.</p>}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span>Page {cursors.length}</span>
        <button
          type="button"
          disabled={!page.next_cursor}
          onClick={() => setCursors([...cursors, page.next_cursor])}
        >
          Next page
        </button>
      </nav>
    </>
  );
}

export function Tasks({ mode, onChange }) {
  const [reload, setReload] = useState(0);
  const [editing, setEditing] = useState(null); // {task, etag}
  const [error, setError] = useState(null);
  const changedNow = () => {
    setReload((n) => n + 1);
    onChange();
  };

  async function onAct(action, task, value) {
    setError(null);
    try {
      if (action === "edit") {
        const fresh = await api.request("GET", `/api/v1/tasks/${task.id}`);
        setEditing({ task: fresh.data, etag: fresh.etag });
        return;
      }
      const path = `/api/v1/tasks/${task.id}`;
      if (action === "delete") {
        await api.request("DELETE", path, { headers: { "If-Match": tagOf(task) } });
      } else {
        await api.request("PATCH", path, { body: { status: value }, headers: { "If-Match": tagOf(task) } });
      }
      changedNow();
    } catch (caught) {
      setError(caught);
      if (caught.status === 412) setReload((n) => n + 1); // show the newer version
    }
  }

  return (
    <section aria-labelledby="tasks-title">
      <h2 id="tasks-title">{mode === "board" ? "Board" : "Tasks"}</h2>
      <NewTask onCreated={changedNow} />
      {editing && (
        <EditTask
          task={editing.task}
          etag={editing.etag}
          onClose={() => setEditing(null)}
          onStale={() => setReload((n) => n + 1)}
          onSaved={() => {
            setEditing(null);
            changedNow();
          }}
        />
      )}
      <Notice error={error} />
      {mode === "board" ? <Board reload={reload} onAct={onAct} /> : <List reload={reload} onAct={onAct} />}
    </section>
  );
}
