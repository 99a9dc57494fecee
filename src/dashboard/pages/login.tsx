import type { FC } from 'hono/jsx';
import { Document } from '../ui/layout';

/** The sign-in form: the admin API key, posted to this origin only. */
export const LoginPage: FC<{ nonce: string; error?: string }> = ({ nonce, error }) => (
  <Document title="Sign in" nonce={nonce}>
    <main>
      <div class="panel login">
        <h1>Herald</h1>
        <p class="muted">Sign in with the admin API key.</p>
        {error ? <div class="flash error">{error}</div> : null}
        <form method="post" action="/dashboard/login">
          {/* For password managers: the key belongs to the one admin account. */}
          <input type="text" name="username" autocomplete="username" value="admin" hidden />
          <label for="key">Admin API key</label>
          <input id="key" name="key" type="password" autocomplete="current-password" required autofocus />
          <button type="submit">Sign in</button>
        </form>
      </div>
    </main>
  </Document>
);

/** A page for errors: not found, forbidden, unavailable. */
export const MessagePage: FC<{ nonce: string; title: string; message: string }> = ({
  nonce,
  title,
  message,
}) => (
  <Document title={title} nonce={nonce}>
    <main>
      <div class="panel login">
        <h1>{title}</h1>
        <p>{message}</p>
        <p>
          <a href="/dashboard">Back to the dashboard</a>
        </p>
      </div>
    </main>
  </Document>
);
