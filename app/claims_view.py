"""The claims panel: the selected run (or the live one) judged by the claims its preset makes."""

from __future__ import annotations

import time


class ClaimsView:
    """The claims of the run shown (a part of MainWindow)."""

    def update_claims(self) -> None:
        """Judge the selected run (or the live one) by the claims its preset makes."""
        self._claims_checked = time.perf_counter()
        from margin_explorer.core.claims import Verdict, judge, judge_family, parse_claims

        entry = self.runs.current() or self.runs.live_entry()
        if entry is None or (entry.live and entry.session.n_records == 0):
            # nothing run yet: the claims of the preset in the editors, waiting to be judged
            claims = parse_claims(self._preset_claims)
            waiting = ("judged on the run as it goes: waiting for its first records" if entry is not None
                       else "judged on the run: press Run (Space)")
            pending = [Verdict(c.check, c.statement, None, waiting) for c in claims]
            self.claims_panel.show_verdicts(self._config_name() if pending else "", pending)
            return
        if not entry.session.config.claims or entry.session.n_records == 0:
            self.claims_panel.show_verdicts("", [])
            return

        session = entry.session
        specs = session.config.claim_specs()
        each = [judge(data, specs) for data in session.run_datas()]  # one list of verdicts per member
        verdicts = each[0] if session.size == 1 else judge_family(each)
        self.claims_panel.show_verdicts(session.config.name or entry.name, verdicts)
