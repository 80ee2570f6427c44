"""The figures' structure: panels, titles, panel letters, integer bin ticks, images that fill their
panels, and no file written (dpm.report.figures draws; stages save)."""

import matplotlib.figure
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from dpm.report import figures

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def no_files_written(tmp_path, monkeypatch):
    """Run every test in an empty folder, refuse savefig, and check the folder stays empty."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda *a, **k: pytest.fail("figures saved a file"))
    yield
    assert list(tmp_path.iterdir()) == []


def drawn(fig):
    """The figure after a draw, so that layout, ticks and extents are final."""
    FigureCanvasAgg(fig).draw()
    return fig


def image_fills_axes(ax) -> float:
    """The fraction of the axes' on-screen area covered by its one image."""
    (image,) = ax.images
    box, shown = ax.get_window_extent(), image.get_window_extent()
    overlap_w = min(box.x1, shown.x1) - max(box.x0, shown.x0)
    overlap_h = min(box.y1, shown.y1) - max(box.y0, shown.y0)
    return overlap_w * overlap_h / (box.width * box.height)


def axes_area_fraction(fig) -> float:
    """The fraction of the figure covered by its axes, as drawn."""
    width, height = fig.canvas.get_width_height()
    return sum(ax.get_window_extent().width * ax.get_window_extent().height for ax in fig.axes) / (width * height)


def swiss_roll_inputs(n_steps=40, n=300):
    columns = (0, n_steps // 4, n_steps // 2, n_steps)
    slices = {t: RNG.normal(size=(n, 2)) for t in columns}
    axis = np.linspace(-2, 2, 5)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    drift = {t: (max(t, 2), grid, -0.1 * grid) for t in columns}
    return slices, {t: RNG.normal(size=(n, 2)) for t in columns}, drift


def test_swiss_roll_columns_say_which_step_the_drift_shows():
    forward, reverse, drift = swiss_roll_inputs()
    data = RNG.normal(size=(50, 2))
    fig = drawn(figures.swiss_roll_figure(forward, reverse, drift, "swiss roll", under_drift=data))
    axes = np.array(fig.axes).reshape(3, 4)
    assert [ax.get_title() for ax in axes[0]] == ["t = 0", "t = 10 (T/4)", "t = 20 (T/2)", "t = 40 (T)"]
    assert "forward" in axes[0, 0].get_ylabel() and "reverse" in axes[1, 0].get_ylabel()
    assert "drift" in axes[2, 0].get_ylabel()
    assert "x_{2}" in axes[2, 0].get_title() and "x_{10}" in axes[2, 1].get_title()
    assert "t = 0" in axes[2, 0].get_xlabel() and "t = 2" in axes[2, 0].get_xlabel()
    assert all(ax.get_xlabel() == "" for ax in axes[2, 1:])
    for ax in axes[2]:
        under, arrows = ax.collections
        np.testing.assert_array_equal(under.get_offsets(), data)
        assert type(arrows).__name__ == "Quiver"


def test_swiss_roll_draws_the_data_under_the_arrows_by_default():
    forward, reverse, drift = swiss_roll_inputs()
    fig = figures.swiss_roll_figure(forward, reverse, drift, "swiss roll")
    np.testing.assert_array_equal(fig.axes[8].collections[0].get_offsets(), forward[0])


def heartbeat(n=30, n_bits=20, period=5):
    samples = np.zeros((n, n_bits))
    for i, phase in enumerate(RNG.integers(0, period, n)):
        samples[i, phase::period] = 1
    return samples, (RNG.uniform(size=(n, n_bits)) < 0.2).astype(float)


def tick_labels(axis) -> list[str]:
    return [label.get_text() for label in axis.get_ticklabels() if label.get_text()]


@pytest.mark.parametrize("n_bits, shown", [(20, list(range(20))), (40, list(range(0, 40, 5)))])
def test_heartbeat_shows_samples_as_generated_with_integer_bins(n_bits, shown):
    samples, initial = heartbeat(n_bits=n_bits)
    fig = drawn(figures.heartbeat_figure(samples, initial, "heartbeat"))
    assert len(fig.axes) == 2
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), samples)
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), initial)
    for ax in fig.axes:
        assert ax.get_xlabel() == "bin"
        assert [int(text) for text in tick_labels(ax.xaxis)] == shown
    assert all(text.lstrip("−-").isdigit() for text in tick_labels(fig.axes[0].yaxis))


def test_heartbeat_aligned_panel_is_optional_and_titled():
    samples, initial = heartbeat()
    fig = figures.heartbeat_figure(samples, initial, "heartbeat", period=5)
    assert len(fig.axes) == 3
    assert "rolled" in fig.axes[2].get_title()
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), figures.align_pulses(samples, 5))
    assert (figures.align_pulses(samples, 5)[:, ::5] == 1).all()


def test_panel_letters_prefix_titles():
    image = RNG.uniform(size=(16, 16, 3))
    fig = figures.image_panels_figure([("holdout", image), ("samples", image)], "CIFAR-10", letters=("a", "d"))
    assert [ax.get_title() for ax in fig.axes] == ["(a) holdout", "(d) samples"]
    fig = figures.image_panels_figure([("holdout", image), ("noisy", image)], "CIFAR-10", letters=("a", None))
    assert [ax.get_title() for ax in fig.axes] == ["(a) holdout", "noisy"]
    assert [ax.get_title() for ax in figures.image_panels_figure([("x", image)], "t").axes] == ["x"]
    with pytest.raises(ValueError):
        figures.image_panels_figure([("holdout", image)], "CIFAR-10", letters=("a", "b"))


@pytest.mark.parametrize("shapes", [[(32, 32, 1), (32, 32, 1)], [(32, 64, 1), (32, 32, 3)]])
def test_single_images_fill_their_panels(shapes):
    panels = [(f"panel {i}", RNG.uniform(size=shape)) for i, shape in enumerate(shapes)]
    fig = drawn(figures.image_panels_figure(panels, "dead leaves"))
    assert all(image_fills_axes(ax) > 0.98 for ax in fig.axes)
    assert axes_area_fraction(fig) > 0.6


def test_image_grid_of_one_image_is_that_image():
    pixels = RNG.uniform(size=(1, 1, 8, 6))
    np.testing.assert_array_equal(figures.image_grid(pixels, n_cols=3), pixels[0].transpose(1, 2, 0))
    assert figures.image_grid(RNG.uniform(size=(5, 3, 4, 4)), n_cols=2).shape == (3 * 5 - 1, 2 * 5 - 1, 3)


def test_inpainting_grid_is_one_large_image_per_panel():
    columns = ["holdout", "central square replaced by noise", "inpainted", "unconditioned sample"]
    rows = [[RNG.uniform(size=(64, 64)) for _ in columns] for _ in range(3)]
    title = "texture stand-in, quick profile: 64×64 holdout squares, central 32×32 inpainted; " * 3
    fig = drawn(figures.inpainting_grid_figure(rows, columns, title, row_names=["brick", "grass", "gravel"],
                                               letters=("a", "b", "c", None)))
    axes = np.array(fig.axes).reshape(3, 4)
    assert [ax.get_title() for ax in axes[0]] == ["(a) holdout", "(b) central square replaced by noise",
                                                  "(c) inpainted", "unconditioned sample"]
    assert all(ax.get_title() == "" for ax in axes[1:].flat)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["brick", "grass", "gravel"]
    np.testing.assert_array_equal(axes[1, 2].images[0].get_array(), rows[1][2])
    assert all(image_fills_axes(ax) > 0.98 for ax in fig.axes)
    assert axes_area_fraction(fig) > 0.7
    assert min(ax.get_window_extent().height for ax in fig.axes) / fig.dpi > 2.5
    (suptitle,) = [text for text in fig.texts if text.get_text() == fig.get_suptitle()]
    assert "\n" in suptitle.get_text() and suptitle.get_window_extent().width <= fig.canvas.get_width_height()[0]


def test_inpainting_grid_rejects_ragged_rows():
    with pytest.raises(ValueError):
        figures.inpainting_grid_figure([[np.zeros((4, 4))] * 3, [np.zeros((4, 4))] * 2], ["a", "b", "c"], "t")


def test_tensorboard_plots_still_draw():
    fig = drawn(figures.scatter_figure(RNG.normal(size=(100, 2)), "samples, iteration 3"))
    assert [ax.get_title() for ax in fig.axes] == ["samples, iteration 3"]
    fig = drawn(figures.binary_image_figure(heartbeat()[0], "samples, iteration 3"))
    assert [ax.get_title() for ax in fig.axes] == ["samples, iteration 3"]


def test_kl_per_t_has_one_panel_per_model_with_its_running_sum_on_a_twin_axis():
    def columns(n_steps):
        t = np.arange(2, n_steps + 1)
        kl = 1.0 / t
        return {"t": t, "kl_bits": kl, "kl_se_bits": 0.1 * kl, "cumulative_bits": np.cumsum(kl)}
    panels = [(f"model {i} (T = {n})", "bits", columns(n)) for i, n in enumerate((40, 2000, 1000, 1000, 500))]
    panels[0][2]["limit_kl_bits"] = 0.5 * panels[0][2]["kl_bits"]
    fig = drawn(figures.kl_per_t_figure(panels, "where the bound loses"))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    kl_axes = [ax for ax in visible if ax.get_title()]
    assert [ax.get_title() for ax in kl_axes] == [p[0] for p in panels]
    assert len(visible) == 2 * len(panels)  # each panel and its twin; the sixth slot hidden
    for ax, (_, _, c) in zip(kl_axes, panels):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        twin = [other for other in visible if other is not ax and other.bbox.bounds == ax.bbox.bounds]
        assert len(twin) == 1
        np.testing.assert_allclose(twin[0].lines[0].get_ydata(), c["cumulative_bits"])
        assert len(ax.lines) == (2 if "limit_kl_bits" in c else 1)  # the best step's terms, dashed
