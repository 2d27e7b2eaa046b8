// Creating a task, and editing one with its ETag: when another edit got there first (412),
// the newer version is shown and the person reapplies their change on top of it, or drops it.
import { useEffect, useRef, useState } from "preact/hooks";

import * as api from "./api.js";
import { Notice } from "./notice.jsx";

export const STATUSES = [
  ["todo", "To do"],
  ["in_progress", "In progress"],
  ["done", "Done"],
];
export const PRIORITIES = ["low", "medium", "high", "urgent"];

function fieldsOf(form) {
  const data = new FormData(form);
  const due = data.get("due_date");
  return {
    title: data.get("title").trim(),
    description: data.get("description"),
    priority: data.get("priority"),
    due_date: due ? new Date(`${due}T23:59:59Z`).toISOString() : null,
    tags: data
      .get("tags")
      .split(",")
      .map((tag) => tag.trim())
      .filter(Boolean),
  };
}

/** What the person changed, compared with the version they started from. */
function changed(fields, task) {
  const out = {};
  for (const [key, value] of Object.entries(fields)) {
    const before = task[key];
    const same =
      key === "due_date"
        ? (before ? before.slice(0, 10) : null) === (value ? value.slice(0, 10) : null)
        : JSON.stringify(before ?? "") === JSON.stringify(value ?? "");
    if (!same) out[key] = value;
  }
  return out;
}

function TaskFields({ task, prefix }) {
  const id = (name) => `${prefix}-${name}`;
  return (
    <>
      <label for={id("title")}>Title</label>
      <input id={id("title")} name="title" required maxlength="200" value={task?.title ?? ""} />
      <label for={id("description")}>Description</label>
      <textarea id={id("description")} name="description" rows="2" value={task?.description ?? ""} />
      <div class="row">
        <div>
          <label for={id("priority")}>Priority</label>
          <select id={id("priority")} name="priority" value={task?.priority ?? "medium"}>
            {PRIORITIES.map((p) => (
              <option value={p}>{p}</option>
            ))}
          </select>
        </div>
        <div>
          <label for={id("due")}>Due date</label>
          <input id={id("due")} name="due_date" type="date" value={task?.due_date ? task.due_date.slice(0, 10) : ""} />
        </div>
      </div>
      <label for={id("tags")}>Tags (comma separated)</label>
      <input id={id("tags")} name="tags" value={(task?.tags ?? []).join(", ")} />
    </>
  );
}

export function NewTask({ onCreated }) {
  const [error, setError] = useState(null);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    setError(null);
    try {
      const fields = fieldsOf(form);
      if (!fields.due_date) delete fields.due_date;
      // One key per submission: a retried POST (a lost answer) creates the task once.
      const { data } = await api.request("POST", "/api/v1/tasks", {
        body: fields,
        headers: { "Idempotency-Key": crypto.randomUUID() },
      });
      form.reset();
      onCreated(data);
    } catch (caught) {
      setError(caught);
    }
  }
  return (
    <details class="card new-task">
      <summary>New task</summary>
      <form onSubmit={submit} aria-label="New task">
        <TaskFields prefix="new" />
        <Notice error={error} />
        <button type="submit" class="primary">
          Create task
        </button>
      </form>
    </details>
  );
}

export function EditTask({ task, etag, onSaved, onClose, onStale }) {
  const [error, setError] = useState(null);
  const [conflict, setConflict] = useState(null); // {latest, etag, mine}
  const box = useRef(null);
  // Keyboard users land in the editor (and, on a conflict, on its explanation).
  useEffect(() => {
    const target = box.current?.querySelector(conflict ? ".conflict" : "input");
    target?.focus();
  }, [conflict !== null]);

  async function save(changes, ifMatch) {
    setError(null);
    try {
      const { data, etag: newTag } = await api.request("PATCH", `/api/v1/tasks/${task.id}`, {
        body: changes,
        headers: { "If-Match": ifMatch },
      });
      setConflict(null);
      onSaved(data, newTag);
    } catch (caught) {
      if (caught.status !== 412) {
        setError(caught);
        return;
      }
      const latest = await api.request("GET", `/api/v1/tasks/${task.id}`).catch((e) => setError(e));
      if (latest) {
        setConflict({ latest: latest.data, etag: latest.etag, mine: changes });
        onStale?.(); // the board behind shows the newer version too
      }
    }
  }

  function submit(event) {
    event.preventDefault();
    const changes = changed(fieldsOf(event.currentTarget), task);
    if (Object.keys(changes).length === 0) return onClose();
    return save(changes, etag);
  }

  return (
    <section
      ref={box}
      class="card editor"
      role="dialog"
      aria-modal="false"
      aria-labelledby="editor-heading"
      onKeyDown={(event) => event.key === "Escape" && onClose()}
    >
      <h3 id="editor-heading">Edit “{task.title}”</h3>
      {conflict ? (
        <div class="conflict" role="alert" tabindex="-1">
          <p>
            <strong>Someone changed this task meanwhile</strong> (now version {conflict.latest.version}). The
            newer version:
          </p>
          <dl class="version">
            <dt>Title</dt>
            <dd>{conflict.latest.title}</dd>
            <dt>Status</dt>
            <dd>{STATUSES.find(([key]) => key === conflict.latest.status)?.[1] ?? conflict.latest.status}</dd>
            <dt>Priority</dt>
            <dd>{conflict.latest.priority}</dd>
            <dt>Tags</dt>
            <dd>{conflict.latest.tags.join(", ") || "none"}</dd>
          </dl>
          <Notice error={error} />
          <p>Your change: {Object.entries(conflict.mine).map(([k, v]) => `${k} → ${v ?? "none"}`).join("; ")}</p>
          <div class="actions">
            <button type="button" class="primary" onClick={() => save(conflict.mine, conflict.etag)}>
              Reapply my change
            </button>
            <button type="button" onClick={() => onSaved(conflict.latest, conflict.etag)}>
              Discard my change
            </button>
          </div>
        </div>
      ) : (
        <form onSubmit={submit} aria-label="Edit task">
          <TaskFields task={task} prefix="edit" />
          <Notice error={error} />
          <div class="actions">
            <button type="submit" class="primary">
              Save
            </button>
            <button type="button" onClick={onClose}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
