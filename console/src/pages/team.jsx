// The team: members and their roles, and invitations with their links.
import { useState } from "preact/hooks";
import { all, patch, post, remove } from "../api.js";
import { Empty, Failure, Field, Icon, Loading, Modal, PageHeader, toast, useForm, useLoad } from "../components/ui.jsx";
import { formatDateTime, t } from "../i18n.js";
import { paths } from "../paths.js";
import { can, userId } from "../session.js";
import { forgetTeam } from "../team.js";
import { roleName } from "../words.js";

const ROLES = ["admin", "manager", "agent", "member"];

export function Team() {
  const users = useLoad(() => all(paths.users.list), []);
  const [inviting, setInviting] = useState(false);
  const [invitation, setInvitation] = useState(null);
  const writable = can("users", "write");
  const changeRole = async (user, newRole) => {
    try {
      await patch(paths.users.role(user.id), { role: newRole });
      forgetTeam();
      users.reload();
    } catch (error) {
      toast(error.message, "error");
      users.reload();
    }
  };
  const removeUser = async (user) => {
    if (!confirm(t("Remove {name} from the organization?", { name: user.full_name }))) return;
    try {
      await remove(paths.users.user(user.id));
      forgetTeam();
      users.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <div class="page">
      <PageHeader title={t("Team")}>
        {writable && <button type="button" class="primary" onClick={() => setInviting(true)}><Icon name="plus" size={16} /> {t("Invite someone")}</button>}
      </PageHeader>
      <Loading state={users}>
        {(items) =>
          items.length ? (
            <table class="table">
              <thead><tr><th>{t("Name")}</th><th>{t("E-mail")}</th><th>{t("Role")}</th><th>{t("Last login")}</th><th /></tr></thead>
              <tbody>
                {items.map((user) => (
                  <tr key={user.id} class={user.is_active ? "" : "inactive"}>
                    <td>{user.full_name}</td>
                    <td dir="ltr" class="start">{user.email}</td>
                    <td>
                      {writable && user.id !== userId() ? (
                        <select aria-label={t("Role")} value={user.role} onChange={(event) => changeRole(user, event.currentTarget.value)}>
                          {ROLES.map((value) => <option value={value}>{roleName(value)}</option>)}
                        </select>
                      ) : (
                        roleName(user.role)
                      )}
                    </td>
                    <td>{user.last_login_at ? formatDateTime(user.last_login_at) : "—"}</td>
                    <td>{writable && user.id !== userId() && user.is_active && <button type="button" class="link-button danger-text" onClick={() => removeUser(user)}>{t("Remove")}</button>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("Nobody here yet.")}</Empty>
          )
        }
      </Loading>
      <PendingInvitations key={invitation?.id || "none"} writable={writable} />
      <section class="card">
        <h2>{t("What each role may do")}</h2>
        <ul class="mini-list">
          <li><strong>{roleName("admin")}</strong> <span>{t("Everything, including the team, channels, settings and billing.")}</span></li>
          <li><strong>{roleName("manager")}</strong> <span>{t("Assigns chats and tickets, runs campaigns, manages customers and deals.")}</span></li>
          <li><strong>{roleName("agent")}</strong> <span>{t("Answers the chats and tickets assigned to them; reads customers.")}</span></li>
          <li><strong>{roleName("member")}</strong> <span>{t("Reads chats, tickets and customers.")}</span></li>
        </ul>
      </section>
      {inviting && (
        <InviteDialog
          onClose={(answer) => {
            setInviting(false);
            if (answer) setInvitation(answer);
          }}
        />
      )}
      {invitation && (
        <Modal title={t("Invitation created")} onClose={() => setInvitation(null)}>
          <div class="stack">
            <p>{t("Send this link to {email}. It works once, until {time}.", { email: invitation.email, time: formatDateTime(invitation.expires_at) })}</p>
            <code dir="ltr" class="code" data-invitation-url>{invitation.invitation_url}</code>
            <button type="button" onClick={() => navigator.clipboard?.writeText(invitation.invitation_url).then(() => toast(t("Copied.")))}>{t("Copy")}</button>
          </div>
        </Modal>
      )}
    </div>
  );
}

function InviteDialog({ onClose }) {
  const form = useForm({ email: "", role: "agent" }, async (values) => {
    onClose(await post(paths.users.invite, values));
  });
  return (
    <Modal title={t("Invite someone")} onClose={() => onClose(null)}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("E-mail")} error={form.errors.email}><input type="email" dir="ltr" required value={form.values.email} onInput={form.set("email")} /></Field>
        <Field label={t("Role")} error={form.errors.role}>
          <select value={form.values.role} onChange={form.set("role")}>{ROLES.map((value) => <option value={value}>{roleName(value)}</option>)}</select>
        </Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Create the invitation")}</button>
      </form>
    </Modal>
  );
}

function PendingInvitations({ writable }) {
  const pending = useLoad(() => all(paths.users.invitations), []);
  const revoke = async (invitation) => {
    if (!confirm(t("Revoke the invitation of {email}? Its link will stop working.", { email: invitation.email }))) return;
    try {
      await remove(paths.users.invitation(invitation.id));
      pending.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <section class="card stack">
      <h2>{t("Pending invitations")}</h2>
      <Loading state={pending}>
        {(items) =>
          items.length ? (
            <table class="table compact" data-pending>
              <thead><tr><th>{t("E-mail")}</th><th>{t("Role")}</th><th>{t("Expires")}</th><th /></tr></thead>
              <tbody>
                {items.map((invitation) => (
                  <tr key={invitation.id}>
                    <td dir="ltr" class="start">{invitation.email}</td>
                    <td>{roleName(invitation.role)}</td>
                    <td>{formatDateTime(invitation.expires_at)}</td>
                    <td>{writable && <button type="button" class="link-button danger-text" onClick={() => revoke(invitation)}>{t("Revoke")}</button>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No invitations are waiting.")}</Empty>
          )
        }
      </Loading>
    </section>
  );
}
