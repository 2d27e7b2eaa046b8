// What went wrong, said once, where it happened: 429 says when to retry, 503 which part is away.
import { useEffect, useState } from "preact/hooks";

export function Notice({ error, kind = "error" }) {
  const [, tick] = useState(0);
  // While a retry time is pending, the countdown stays current.
  useEffect(() => {
    if (!error?.retryAt) return undefined;
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, [error]);
  if (!error) return null;
  let text = typeof error === "string" ? error : error.explain ? error.explain() : String(error);
  if (error.retryAt && error.status === 429) {
    const left = Math.max(0, Math.ceil((error.retryAt - Date.now()) / 1000));
    text = left
      ? `Too many requests. Retry in ${left} s (at ${error.retryAt.toLocaleTimeString()}).`
      : "Too many requests. You can retry now.";
  }
  return (
    <p class={`notice ${kind}`} role={kind === "error" ? "alert" : "status"} data-status={error.status}>
      {text}
    </p>
  );
}
