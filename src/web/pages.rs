//! The dispatch of page routes to the resource that answers them, one file per resource with
//! its GET and POST handlers: [`dashboard`], [`hosts`], [`scripts`], [`queue`] (and
//! scheduling), [`runs`] (and notifications), [`login`], [`account`]. GET shows, POST submits.

use super::http::{Form, Req, Resp};
use super::layout::{error, error_page};
use super::router::Route;
use super::{
    Web, Who, account, checks, dashboard, depends, downtimes, hosts, login, queue, runs, scripts,
};
use crate::store::Role;

/// Page routes: GET shows, POST submits.
pub fn handle(web: &Web, who: &Who, route: Route, req: &Req) -> Resp {
    use Route as R;
    let post = req.is_post();
    if post && !who.may(Role::Operator) && !matches!(route, R::Logout | R::Password) {
        return error(who, 403, "viewers cannot change anything");
    }
    let r = match (route, post) {
        (R::Dashboard, false) => dashboard::page(web, who),
        (R::Logout, true) => Ok(login::logout(web, req)),
        (R::Password, _) => Ok(account::handle(web, who, req)),
        (R::Hosts, false) => hosts::hosts(web, who),
        (R::HostNew, false) => Ok(hosts::host_form(who, None, &Default::default(), None)),
        (R::HostNew, true) => hosts::host_save(web, who, req, None),
        (R::Host(n), false) => hosts::host(web, who, &n),
        (R::HostEdit(n), false) => hosts::host_edit(web, who, &n),
        (R::HostEdit(n), true) => hosts::host_save(web, who, req, Some(&n)),
        (R::Scripts, false) => scripts::scripts(web, who),
        (R::ScriptNew, false) => Ok(scripts::script_form(who, None, &Default::default(), None)),
        (R::ScriptNew, true) => scripts::script_save(web, who, req, None),
        (R::Script(n), false) => scripts::script(web, who, &n),
        (R::Script(n), true) => scripts::script_save(web, who, req, Some(&n)),
        (R::Schedule, false) => queue::schedule_form(web, who, &query_form(req), None),
        (R::Schedule, true) => queue::schedule(web, who, req),
        (R::Queue, false) => queue::queue(web, who, req),
        (R::JobCancel(id), true) => queue::cancel(web, who, id),
        (R::JobPriority(id), true) => queue::priority(web, req, id),
        (R::ScheduleRemove(id), true) => queue::schedule_remove(web, who, id),
        (R::Runs, false) => runs::runs(web, who, req),
        (R::Run(id), false) => runs::run(web, who, id),
        (R::Notifications, false) => runs::notifications(web, who),
        (R::Downtimes, false) => {
            downtimes::page(web, who, &Form::default(), None, req.query("done"))
        }
        (R::Downtimes, true) => downtimes::add(web, who, req),
        (R::DowntimeRemove(id), true) => downtimes::remove(web, id),
        (R::Dependencies, false) => {
            depends::page(web, who, &Form::default(), None, req.query("done"))
        }
        (R::Dependencies, true) => depends::add(web, who, req),
        (R::DependencyRemove(id), true) => depends::remove(web, id),
        (R::Ack(host, script), true) => downtimes::ack(web, who, req, host.as_deref(), &script),
        (R::Check(host, check), false) => checks::page_of(web, who, host.as_deref(), &check, req),
        _ => {
            return error(who, 405, &format!("{} is not allowed here", req.method))
                .with("allow", if post { "GET" } else { "POST" });
        }
    };
    r.unwrap_or_else(|e| error_page(who, &e))
}

/// The query string as a form (a link can pre-fill a form: `/schedule?script=x&host=y`).
fn query_form(req: &Req) -> Form {
    Form(req.query.clone())
}
