"""The persona in use, and what comes with it: its prompt, greeting, knowledge, tools and
thinking, applied to a running voice session and switched by voice.

::

    config ─► PersonaRuntime ─► session.dialog.system_prompt   (its instructions)
                             ├► session.reply.knowledge         (its files, fenced as data)
                             ├► session.reply.tools / .confirm   (its tools; side effects ask first)
                             └► session.reply.thinking          (think before answering, or not)

"Switch to the cooking assistant" is an instant command; its effect calls ``switch``. The
knowledge index of a persona, at start as after a switch, is brought up to date on a worker
thread, so neither start-up nor a switch waits for it; until it is ready, questions get no
passages (``wait_for_knowledge`` awaits it, for a replay on the simulated clock). A persona with
its own model or voice gets them too: a server URL at once, a GGUF file or a Piper voice once
loaded on a worker thread (the previous one answers until then); a persona without its own
goes back to the engines the session started with. Loaded engines are kept for the next switch.

Tools are offered to the model only where they help: the bundled 135M model calls them poorly
and each turn would cost it a second prompt, so they are off unless ``[assistant] tools`` is
on or the persona lists its tools.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from voxloop.models import registry
from voxloop.models.base import LLM, TTS

from .assistant.arithmetic import evaluate_spoken
from .assistant.builtin_tools import builtin_tools
from .assistant.commands import Commands
from .assistant.knowledge import KnowledgeError, KnowledgeIndex, knowledge_context
from .assistant.personas import Persona
from .assistant.spotlight import Spotlight
from .assistant.thinking import ThinkingConfig
from .assistant.timers import format_clock, format_duration
from .assistant.tools import ToolRegistry
from .config import Config
from .engines import make_llm, make_tts
from .session import VoiceSession

logger = logging.getLogger(__name__)


class PersonaRuntime:
    def __init__(self, config: Config, state_dir: Path, persona_id: str | None = None) -> None:
        self.config = config
        self.personas = config.personas
        self.persona: Persona = self.personas.get(persona_id or config.assistant.persona)
        self.state_dir = state_dir
        self.spotlight = Spotlight()
        """One fence per session, for files and tool results alike."""
        self.index: KnowledgeIndex | None = None
        self._session: VoiceSession | None = None
        self._updating: asyncio.Task[None] | None = None
        self._engines: dict[tuple[str, str], LLM | TTS] = {}
        """Engines loaded for personas, by (kind, model), and the session's own under ""."""
        self._loading: set[asyncio.Task[None]] = set()

    # --- what the reply stage asks ------------------------------------------------------------

    @property
    def indexing(self) -> bool:
        """The persona's files are being indexed: until then ``reference`` gives nothing."""
        return self._updating is not None and not self._updating.done()

    async def wait_for_knowledge(self, timeout_s: float) -> bool:
        """Wait until the persona's files are indexed (or failed to be); False on a timeout."""
        updating = self._updating
        if updating is None or updating.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(updating), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    def reference(self, question: str) -> str:
        """The persona's best passages for ``question``, each fenced with its file's name."""
        index = self.index
        if index is None or self.indexing:
            return ""
        try:
            passages = knowledge_context(index, question)
        except KnowledgeError as e:
            logger.warning("knowledge search failed: %s", e)
            return ""
        if not passages:
            return ""
        fenced = "\n".join(self.spotlight.fence(p.source, p.text) for p in passages)
        return f"Passages from the user's files that may help (quote the file name when you use one):\n{fenced}"

    def tools(self, commands: Commands | None) -> ToolRegistry | None:
        """The tools this persona offers the model, or None for none."""
        wanted = self.persona.tools
        if wanted is None and not self.config.assistant.tools or wanted == []:
            return None
        registry = self._builtin(commands)
        return registry if wanted is None else registry.enabled(wanted)

    def _builtin(self, commands: Commands | None) -> ToolRegistry:
        def search(query: str) -> str:
            if self.indexing:
                return "The files are still being indexed; they can be searched in a moment."
            return self.reference(query) or "Nothing in the files matches."

        # Offered whenever the persona has files: until its index is ready the search says so.
        knows = bool(self.persona.knowledge)
        if commands is None:
            return builtin_tools(search_knowledge=search if knows else None)
        context = commands.context
        timers, notes = context.timers, context.notes

        def calculate(expression: str) -> str:
            answer = evaluate_spoken(expression)
            return answer.reply if answer is not None else "That is not arithmetic I can do."

        def set_timer(seconds: int, label: str) -> str:
            timer = timers.add(seconds, label)
            return f"{timer.name()} set for {format_duration(seconds)}."

        def list_timers() -> str:
            return "; ".join(timers.describe(t) for t in timers.active()) or "No timers are running."

        def cancel_timer(label: str) -> str:
            matching = [t.id for t in timers.active() if label.lower() in t.name().lower()]
            return f"Cancelled {len(timers.cancel(matching))} timer(s)."

        def list_notes() -> str:
            return "\n".join(f"{n.id}. {n.text}" for n in notes.list()) or "There are no notes."

        def add_note(text: str) -> str:
            return f"Saved as note {notes.add(text).id}."

        def delete_note(number: int) -> str:
            return f"Deleted note {number}." if notes.delete(number) else f"There is no note {number}."

        return builtin_tools(
            clock=lambda: format_clock(timers.now()) + ", " + timers.now().strftime("%A %d %B %Y"),
            calculate=calculate,
            set_timer=set_timer,
            list_timers=list_timers,
            cancel_timer=cancel_timer,
            add_note=add_note,
            list_notes=list_notes,
            delete_note=delete_note,
            search_knowledge=search if knows else None,
        )

    # --- the session --------------------------------------------------------------------------

    def attach(self, session: VoiceSession) -> None:
        """Make ``session`` speak as this persona, and let the user switch by voice."""
        self._session = session
        self._engines[("llm", "")] = session.reply.llm
        self._engines[("voice", "")] = session.speech.tts
        session.reply.knowledge = self.reference
        session.reply.spotlight = self.spotlight
        if session.commands is not None:
            context = session.commands.context
            context.personas = self.personas.names
            context.switch_persona = self.switch
            context.greeting = lambda name: self._greeting(name)
            session.reply.confirm = context.gate.ask
        self._apply()

    def _greeting(self, name: str) -> str:
        persona = self.personas.by_spoken_name(name)
        return persona.greeting if persona is not None else ""

    def open_knowledge(self) -> None:
        """Open the persona's index and start bringing it up to date on a worker thread;
        returns at once (call it on the event loop). Opening is only creating the database
        file: an index that cannot be used at all raises KnowledgeError here, at start."""
        self.index = self.persona.knowledge_index(self.state_dir)
        if self.index is not None:
            self._updating = asyncio.get_running_loop().create_task(self._update(self.index, self.persona))

    async def _update(self, index: KnowledgeIndex, persona: Persona) -> None:
        try:
            report = await asyncio.to_thread(index.update)
        except Exception as e:  # the persona's files must not end the conversation
            logger.error("persona %s: its files cannot be indexed: %s", persona.name, e)
            return
        logger.info("knowledge of %s: %s", persona.name, report)

    async def _open_for(self, persona: Persona) -> None:
        """The switch's index, in place only if that persona is still the one in use."""
        try:
            index = await asyncio.to_thread(persona.knowledge_index, self.state_dir)
        except KnowledgeError as e:
            logger.error("persona %s: its files cannot be indexed: %s", persona.name, e)
            return
        if index is not None and self.persona is not persona:
            index.close()
            return
        self.index = index
        if index is not None:
            await self._update(index, persona)

    def switch(self, name: str) -> None:
        """Become the persona called ``name`` (as the user said it) from the next turn on."""
        persona = self.personas.by_spoken_name(name)
        if persona is None or persona is self.persona:
            return
        logger.info("persona: %s -> %s", self.persona.name, persona.name)
        old = self.index
        self.persona, self.index = persona, None
        if old is not None:
            old.close()
        self._apply()
        self._updating = asyncio.get_running_loop().create_task(self._open_for(persona)) if persona.knowledge else None
        self._use_engine("llm", persona.llm_url or persona.llm or "")
        self._use_engine("voice", persona.voice or "")

    def _use_engine(self, kind: str, model: str) -> None:
        """Put the persona's model (or voice) in place: at once if loaded (or a URL), else
        once a worker thread has loaded it, if the persona is still in use then."""
        session = self._session
        if session is None:
            return
        key = (kind, model)
        if key not in self._engines and kind == "llm" and model.startswith(("http://", "https://")):
            self._engines[key] = make_llm(self.config, None, model)
        if key in self._engines:
            self._put(kind, self._engines[key])
            return
        persona = self.persona

        def load() -> LLM | TTS:
            engine: LLM | TTS
            if kind == "llm":
                engine = make_llm(self.config, registry.resolve_llm(model), None)
            else:
                engine = make_tts(self.config, registry.resolve_voice(model))
            engine.warm_up()
            return engine

        async def swap() -> None:
            try:
                engine = await asyncio.to_thread(load)
            except Exception as e:  # a bad path in a persona must not end the conversation
                logger.error("persona %s: cannot load its %s %s: %s", persona.name, kind, model, e)
                return
            self._engines[key] = engine
            if self.persona is persona:
                self._put(kind, engine)

        task = asyncio.get_running_loop().create_task(swap())
        self._loading.add(task)
        task.add_done_callback(self._loading.discard)

    def _put(self, kind: str, engine: LLM | TTS) -> None:
        assert self._session is not None
        if kind == "llm":
            self._session.reply.llm = engine  # type: ignore[assignment]
        else:
            self._session.speech.tts = engine  # type: ignore[assignment]
        logger.info("persona %s: %s is now %s", self.persona.name, kind, type(engine).__name__)

    def _apply(self) -> None:
        session = self._session
        if session is None:
            return
        session.dialog.system_prompt = self.persona.system_prompt
        session.reply.thinking = ThinkingConfig(always=self.persona.think)
        try:
            session.reply.set_tools(self.tools(session.commands))
        except ValueError as e:  # a tool name the registry does not have (checked at start too)
            logger.error("persona %s: %s", self.persona.name, e)
            session.reply.set_tools(None)

    def close(self) -> None:
        for task in [self._updating, *self._loading]:
            if task is not None:
                task.cancel()
        if self.index is not None:
            self.index.close()
            self.index = None
