"""Evidence: one reason to look at an event, how strongly it suggests "investigate", and what it is."""

from __future__ import annotations

from dataclasses import dataclass

# ATT&CK tactics evidence is grouped by (the ids people pivot on are the techniques).
DISCOVERY = "discovery"
CREDENTIAL_ACCESS = "credential-access"
PERSISTENCE = "persistence"
PRIVILEGE_ESCALATION = "privilege-escalation"
DEFENSE_EVASION = "defense-evasion"
EXECUTION = "execution"
COLLECTION = "collection"
EXFILTRATION = "exfiltration"
COMMAND_AND_CONTROL = "command-and-control"
IMPACT = "impact"
LATERAL_MOVEMENT = "lateral-movement"
INITIAL_ACCESS = "initial-access"


@dataclass(frozen=True, slots=True)
class Evidence:
    weight: float  # 0..1, how strongly this alone suggests "investigate"
    reason: str  # what a person reads
    technique: str = ""  # ATT&CK technique id, e.g. T1059.004
    tactic: str = ""  # one of the tactics above

    def labelled(self) -> str:
        """The reason with its technique, as shown in `anomaly_reasons`."""
        return f"{self.reason} [{self.technique}]" if self.technique else self.reason
