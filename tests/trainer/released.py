# ruff: noqa: E741  (the released names, ``l`` included, are kept)
"""Released losses, transcribed statement by statement into PyTorch, for the agreement tests (test_recent.py).

Each function follows one released file; the comment on a statement gives its
line there. Only the branches the protocol uses are kept (no class labels, no
guidance); a dropped branch is named where it starts. These are the yardsticks
the project's objectives are checked against, written apart from them on
purpose: nothing here imports ``trainer.objectives``.
"""

from __future__ import annotations

import torch


# --------------------------------------------------------------------------------------------- iMF
# Lyy-iiis/imeanflow @ bf60cd7, imf.py (JAX/Flax). jax.jvp(..., has_aux=True) -> torch.func.jvp(has_aux=True).
def imf_loss(u_head, v_head, x, e, t, r, norm_eps=0.01, norm_p=1.0):
    """iMeanFlow.forward (331-401), unconditional: omega = 1, so v_g = v_t (315, 320) and no label drop.

    ``u_head(z, t, r)`` and ``v_head(z, t, r)`` are the network's two heads (u_fn returns both, 366-367).
    Returns (loss, u_target, (adaptive weight of loss_u, of loss_v)).
    """
    t4, r4 = t.view(-1, 1, 1, 1), r.view(-1, 1, 1, 1)
    z_t = (1 - t4) * x + t4 * e  # 350
    v_t = e - x  # 351
    # 358-360 guidance_fn: v_c = v_cond_fn(z_t, t, w, y) (319), the v-head at h = 0 (227, 231); v_g = v_t
    v_c = v_head(z_t, t, t)
    v_g = v_t

    def u_fn(z_t, t, r):  # 366-367
        return u_head(z_t, t, r), v_head(z_t, t, r)

    dtdt = torch.ones_like(t)  # 369
    dtdr = torch.zeros_like(t)  # 370
    u, du_dt, v = torch.func.jvp(u_fn, (z_t, t, r), (v_c, dtdt, dtdr), has_aux=True)  # 373
    V = u + (t4 - r4) * du_dt.detach()  # 376
    v_g = v_g.detach()  # 378
    weights = []

    def adp_wt_fn(loss):  # 380-382
        adp_wt = (loss + norm_eps) ** norm_p
        weights.append(1 / adp_wt.detach())
        return loss / adp_wt.detach()

    loss_u = torch.sum((V - v_g) ** 2, dim=(1, 2, 3))  # 385
    loss_u = adp_wt_fn(loss_u)  # 386
    loss_v = torch.sum((v - v_g) ** 2, dim=(1, 2, 3))  # 389
    loss_v = adp_wt_fn(loss_v)  # 390
    loss = loss_u + loss_v  # 392
    loss = loss.mean()  # 393
    return loss, (v_g - (t4 - r4) * du_dt).detach(), tuple(weights)


def imf_sample_tr(n, g, P_mean=-0.4, P_std=1.0, data_proportion=0.5):
    """imf.py sample_tr (126-139) with logit_normal_dist (120-124)."""
    t = torch.sigmoid(torch.randn(n, generator=g, dtype=torch.float64) * P_std + P_mean)  # 130, 121-124
    r = torch.sigmoid(torch.randn(n, generator=g, dtype=torch.float64) * P_std + P_mean)  # 131
    t, r = torch.maximum(t, r), torch.minimum(t, r)  # 132
    data_size = int(n * data_proportion)  # 134
    fm_mask = torch.arange(n) < data_size  # 135
    r = torch.where(fm_mask, t, r)  # 137
    return t, r


# ------------------------------------------------------------------------------------------ SoFlow
# zlab-princeton/SoFlow @ 3b60d60, models.py and train.py (PyTorch). Scheduler 'Linear' / 'Euler' (9-70):
# alpha(t) = 1 - t, beta(t) = t, a(t, s) = 1, b(t, s) = s - t, d_s b(t, t) = 1.
def soflow_velocity_loss(network, samples, x_1, t, p, eps):
    """get_velocity_loss (122-158), the unconditional branch (144-147); x_1 is the noise get_x_t_v_t draws (42)."""
    batch_size = samples.size(0)
    t4 = t.view(batch_size, 1, 1, 1)
    x_t, v_t = (1 - t4) * samples + t4 * x_1, -1 * samples + 1 * x_1  # 39-46
    v_t_predict = 0 * x_t + 1 * network(x_t, t, t)  # 146 -> predict_velocity 110-114 (a_grad 0, b_grad 1)
    delta = (v_t_predict - v_t).view(batch_size, -1)  # 147
    pbps = torch.ones_like(t)  # 150: b_grad(t, t)[1] = 1
    w = 1.0 / (pbps.abs().flatten() * (delta.pow(2).mean(dim=1) + eps).pow(p))  # 152
    velocity_loss = (w.detach() * delta.pow(2).mean(dim=1)).mean()  # 154
    return velocity_loss, w


def soflow_consistency_loss(network, samples, x_1, t, l, s, p, eps):
    """get_consistency_loss (161-207), the unconditional branch (184-186); CUDA RNG lines (188, 194) are no-ops."""
    batch_size = samples.size(0)
    t, l, s = t.view(batch_size, 1, 1, 1), l.view(batch_size, 1, 1, 1), s.view(batch_size, 1, 1, 1)  # 166
    x_t, v_t = (1 - t) * samples + t * x_1, -1 * samples + 1 * x_1  # 168
    v_t_masked = v_t  # 186
    NN_t = network(x_t, t.flatten(), s.flatten())  # 189
    f_t = 1 * x_t + (s - t) * NN_t  # 190
    with torch.no_grad():  # 192
        x_l = x_t + v_t_masked * (l - t)  # 193
        NN_l = network(x_l, l.flatten(), s.flatten())  # 196
        f_l = 1 * x_l + (s - l) * NN_l  # 197
        delta_quotient = ((f_t - f_l) / (t - l)).view(batch_size, -1)  # 198
        w = 1.0 / (delta_quotient.pow(2).mean(dim=1) + eps).pow(p).view(batch_size, -1)  # 199
    sgn = torch.sign(s - t).flatten()  # 201
    consistency_loss = (sgn * (NN_t.view(batch_size, -1) * (delta_quotient * w)).mean(dim=1)).mean()  # 202
    return consistency_loss, w.flatten(), f_l


def soflow_step_loss(network, samples, x_1, t_v, t_c, l, s, velocity_loss_ratio, p, eps):
    """train.py 223-281: the first int(ratio * B) rows get the velocity loss, the rest the consistency loss."""
    batch_size = samples.size(0)
    velocity_num = int(velocity_loss_ratio * batch_size)  # 224
    consistency_num = batch_size - velocity_num  # 225
    velocity_loss = consistency_loss = torch.zeros(())
    w_v = w_c = f_l = None
    if velocity_num > 0:  # 227
        velocity_loss, w_v = soflow_velocity_loss(network, samples[:velocity_num], x_1[:velocity_num], t_v, p, eps)
    if consistency_num > 0:  # 250
        consistency_loss, w_c, f_l = soflow_consistency_loss(
            network, samples[velocity_num:], x_1[velocity_num:], t_c, l, s, p, eps
        )
    loss = velocity_loss * (velocity_num / batch_size) + consistency_loss * (consistency_num / batch_size)  # 281
    return loss, w_v, w_c, f_l


def soflow_times(n, g, time_mean, time_std, now_steps, total_steps, init_ratio, end_ratio):
    """train.py 259-266 with get_middle_time 'Exponent' (models.py 217-228): (t, l, s)."""
    time1 = torch.sigmoid(torch.randn(n, generator=g, dtype=torch.float64) * time_std[1] + time_mean[1])  # 259
    time2 = torch.sigmoid(torch.randn(n, generator=g, dtype=torch.float64) * time_std[2] + time_mean[2])  # 260
    t = time2.clamp(min=1e-4)  # 263
    s = torch.min(time1, t - 1e-4)  # 264
    l = t + (s - t) * (init_ratio * ((end_ratio / init_ratio) ** (now_steps / total_steps)))  # 265, 228
    l = torch.min(l, t - 1e-4)  # 266
    return t, l, s


# ---------------------------------------------------------------------------------------------- MeanFlow
# Gsunshine/py-meanflow @ 1f6d72d, meanflow/models/meanflow.py (PyTorch). The net there is called with (t, h = t - r).
def py_meanflow_loss(u_func, x, e, t, r, norm_p, norm_eps):
    """MeanFlow.forward_with_loss (36-68) with e and (t, r) given (39-40 draw them); u_func(z, t, r) as 47-49."""
    t, r = t.view(-1, 1, 1, 1), r.view(-1, 1, 1, 1)  # 41
    z = (1 - t) * x + t * e  # 43
    v = e - x  # 44
    dtdt = torch.ones_like(t)  # 51
    drdt = torch.zeros_like(r)  # 52
    u_pred, dudt = torch.func.jvp(u_func, (z, t, r), (v, dtdt, drdt))  # 55 (autocast off: fp64 here)
    u_tgt = (v - (t - r) * dudt).detach()  # 57
    loss = (u_pred - u_tgt) ** 2  # 59
    loss = loss.sum(dim=(1, 2, 3))  # 60
    adp_wt = (loss.detach() + norm_eps) ** norm_p  # 63
    loss = loss / adp_wt  # 64
    loss = loss.mean()  # 66
    return loss, u_tgt, 1 / adp_wt


# --------------------------------------------------------------------------------------------- AlphaFlow
# snap-research/alphaflow @ b0fef77, src/training/loss.py AlphaFlowLoss (PyTorch). Its tensors are videos
# [b, t, c, h, w]; these are images [b, c, h, w]. Unconditional, cfg omega 1 and kappa 0 (the base config), so
# _compute_velocity_cfg (466-501) returns the velocity itself (guided = 1 * v + 0 + 0, no network call).
def alphaflow_loss(net, x_aug, noise_unscaled, t, t_next, dt, alpha, clamp_utgt, eps):
    """AlphaFlowLoss.forward (546-593) with the sampled (t, t_next, dt) and noise given; net(x, sigma_next, sigma).

    The batch must hold its dt == 0 rows first, as sample_traj_params (449-464) lays it out (577 concatenates
    the two branches in that order). Returns (mean loss, mean_velocity, weight).
    """
    b = x_aug.shape[0]
    t, t_next, dt = t.view(b, 1, 1, 1), t_next.view(b, 1, 1, 1), dt.view(b, 1, 1, 1)
    x_t = (1 - t) * x_aug + t * noise_unscaled  # apply_noise: (1 - sigma) x + sigma n
    velocity = noise_unscaled - x_aug
    velocity_cfg = velocity.clone()  # _compute_velocity_cfg with omega 1, kappa 0
    mask_c = (dt == 0).flatten()
    mask_d = ~mask_c
    batch_size_c, batch_size_d = int(mask_c.sum()), int(mask_d.sum())
    with torch.no_grad():
        mean_velocity_c = _alphaflow_mean_velocity_c(net, x_t[mask_c], t_next[mask_c], t[mask_c], velocity_cfg[mask_c])
        mean_velocity_d = _alphaflow_mean_velocity_d(
            net, x_t[mask_d], velocity_cfg[mask_d], t_next[mask_d], t[mask_d], dt[mask_d], clamp_utgt
        )
    mean_velocity = torch.cat([mean_velocity_c, mean_velocity_d], dim=0)
    pred_mean_velocity = net(x_t, t_next.flatten(), t.flatten())
    loss_unscaled = ((pred_mean_velocity - mean_velocity) ** 2).flatten(1).mean(1)  # 589
    weight_c = torch.ones(batch_size_c, dtype=x_aug.dtype)
    weight_d = torch.ones(batch_size_d, dtype=x_aug.dtype) * alpha
    weight = torch.cat([weight_c, weight_d], dim=0) / (loss_unscaled.detach() + eps)  # 592
    loss = weight * loss_unscaled  # 593
    return loss.mean(), mean_velocity, weight  # the train loop takes the mean


def _alphaflow_mean_velocity_c(net, x_t, t_next, t, velocity_cfg):
    """_compute_mean_velocity_c (503-527): a JVP over (x_t, t_next, t) with tangents (v_cfg, 0, 1)."""
    t, t_next = t.flatten(), t_next.flatten()
    mask_mf = ~torch.isclose(t_next, t)
    batch_size_mf = int(mask_mf.sum())
    mean_velocity = velocity_cfg.clone()
    if batch_size_mf == 0:
        return mean_velocity
    x_t_mf, t_mf, t_next_mf, velocity_cfg_mf = x_t[mask_mf], t[mask_mf], t_next[mask_mf], velocity_cfg[mask_mf]
    _, dudt_mf = torch.func.jvp(
        net, (x_t_mf, t_next_mf, t_mf), (velocity_cfg_mf, torch.zeros_like(t_next_mf), torch.ones_like(t_mf))
    )
    mean_velocity[mask_mf] = velocity_cfg_mf - (t_mf - t_next_mf).view(batch_size_mf, 1, 1, 1) * dudt_mf
    return mean_velocity


def _alphaflow_mean_velocity_d(net, x_t, velocity_cfg, t_next, t, dt, clamp_utgt):
    """_compute_mean_velocity_d (529-544)."""
    if x_t.shape[0] == 0:
        return torch.empty((0, *velocity_cfg.shape[1:]), dtype=velocity_cfg.dtype)
    x_t_minus_dt = x_t - dt * velocity_cfg
    if torch.isclose(1 - dt / (t - t_next), torch.zeros_like(t)).all():
        mean_velocity_next = torch.zeros_like(x_t_minus_dt)
    else:
        mean_velocity_next = net(x_t_minus_dt, t_next.flatten(), (t - dt).flatten())
    mean_velocity = (dt * velocity_cfg + (t - dt - t_next) * mean_velocity_next) / (t - t_next)
    return torch.clip(mean_velocity, min=-clamp_utgt, max=clamp_utgt)  # 542


# ---------------------------------------------------------------------------------------------- Shortcut
# kvfrans/shortcut-models @ 6010043, targets_shortcut.py (JAX). Its time runs the other way (t = 0 noise, t = 1
# data), its model takes (x, t, dt_base) with step size 2^-dt_base and predicts the velocity towards the data.
def shortcut_bootstrap_target(call_model_fn, x_t, t, dt_base):
    """get_targets' bootstrap targets (42-47 without guidance, 71), for rows whose step is 2^-dt_base."""
    dt = 1 / (2 ** (dt_base))  # 23
    dt_base_bootstrap = dt_base + 1  # 24
    dt_bootstrap = dt / 2  # 25
    v_b1 = call_model_fn(x_t, t, dt_base_bootstrap)  # 42
    t2 = t + dt_bootstrap  # 43
    x_t2 = x_t + dt_bootstrap[:, None, None, None] * v_b1  # 44
    x_t2 = torch.clip(x_t2, -4, 4)  # 45
    v_b2 = call_model_fn(x_t2, t2, dt_base_bootstrap)  # 46
    v_target = (v_b1 + v_b2) / 2  # 47
    return torch.clip(v_target, -4, 4)  # 71


# --------------------------------------------------------------------------------------------- TVM
# lumalabs/tvm @ 82e8e5d, training/wrapper.py and training/loss.py (PyTorch). Unconditional: label_dim 0, cfg 1,
# so beta_scale = w_scale = 1 and do_scale_param's out_scale is 1 (wrapper.py 108-113, 171-174).
def tvm_loss(model, teacher, images, noise, t, s, s_prime):
    """TVMLoss.__call__ (67-98) and TVMWrapper.forward (118-190) for times already drawn (sample_ts, 39-64).

    ``model(x, t, s)`` is the network F (wrapper.py 71-77, gap t - s formed inside). Returns the per-sample loss.
    """
    t4, s4, sp4 = t.view(-1, 1, 1, 1), s.view(-1, 1, 1, 1), s_prime.view(-1, 1, 1, 1)
    yt = (1 - t4) * images + t4 * noise  # loss.py 80
    ys_prime = (1 - sp4) * images + sp4 * noise  # 81
    v_target = noise - images  # 96
    # get_dfds (83-114): jvp in (x, t, s) along (0, 0, 1); detach_jvp False (27) keeps the tangent's graph
    F_ts, F_ts_grad = torch.func.jvp(model, (yt, t, s), (torch.zeros_like(yt), torch.zeros_like(s), torch.ones_like(s)))
    f_st = yt + (s4 - t4) * F_ts  # 112
    df_ds = F_ts + (s4 - t4) * F_ts_grad  # 113
    with torch.no_grad():  # 153-160: the teacher on [f_ts; ys'] at [s; s'], gap 0
        F_ss_from_fts, F_ss_uncond = teacher(
            torch.cat([f_st, ys_prime]), torch.cat([s, s_prime]), torch.cat([s, s_prime])
        ).chunk(2, dim=0)
    F_ss = model(ys_prime, s_prime, s_prime)  # 162-168
    terminal_loss = ((df_ds - F_ss_from_fts) ** 2).flatten(1).mean(-1)  # 177 (beta_scale 1)
    v_target = 1 * v_target + (1 - 1) * F_ss_uncond  # 179
    fm_loss = ((F_ss - v_target) ** 2).flatten(1).mean(-1)  # 180
    close = torch.isclose(s, t)  # 182-183
    terminal_loss = torch.where(close, 0 * terminal_loss, terminal_loss)
    return terminal_loss + fm_loss  # 186


def tvm_sample_ts(n, g, s_P_mean=-0.4, s_P_std=1.0, gap_P_mean=-0.8, gap_P_std=1.0):
    """loss.py sample_ts (39-64), in float64 with a generator."""
    log_len = torch.randn(n, generator=g, dtype=torch.float64) * gap_P_std + gap_P_mean  # 42
    len_ = log_len.sigmoid()  # 43
    maxs = 1 - len_  # 44
    max_logns = torch.log(maxs / (1 - maxs))  # 45
    dist = torch.distributions.Normal(torch.full_like(len_, s_P_mean), torch.full_like(len_, s_P_std))  # 47-50
    cdf = torch.rand(n, generator=g, dtype=torch.float64) * (dist.cdf(max_logns) - 0.0) + 0.0  # 52-54
    s = dist.icdf(cdf).sigmoid()  # 55-56
    t = (s + len_).clamp(max=1)  # 58
    s_prime = (torch.randn(n, generator=g, dtype=torch.float64) * s_P_std + s_P_mean).sigmoid()  # 61-62
    return t, s, s_prime


# --------------------------------------------------------------------------------------------- TiM
# WZDTHU/TiM @ b431859, tim/schedulers/transition.py and transports.py (OT_FM: alpha_t = 1 - t, sigma_t = t,
# c_noise(t) = t). Unconditional, enhance_target off (transports.py 27); REPA's proj_loss is a separate term.
def tim_loss(model, x, z, t, r, n_diffusion, derivative="dde", epsilon=0.005, use_dir_loss=True):
    """TransitionSchedule.__call__ (171-213) for times already drawn (sample_t_and_r, 46-59); the weighted loss.

    Weighting as every config: weight_time_type 'sqrt', weight_time_tangent True, weight_t_and_r True.
    """
    t4, r4 = t.view(-1, 1, 1, 1), r.view(-1, 1, 1, 1)
    x_t = (1 - t4) * x + t4 * z  # prepare_input 67-68
    v_t = -1 * x + 1 * z  # 69
    F_pred = model(x_t, t, r)  # 190
    dF = torch.zeros_like(x)  # dde_derivative 112 / jvp_derivative
    with torch.no_grad():
        xs, zs, ts, rs = x[n_diffusion:], z[n_diffusion:], t[n_diffusion:], r[n_diffusion:]  # 114
        if derivative == "dde":

            def xfunc(tt):  # 121-124
                tt4 = tt.view(-1, 1, 1, 1)
                return model((1 - tt4) * xs + tt4 * zs, tt, rs)

            fc1_dt = 1 / (2 * epsilon)  # 126
            dF[n_diffusion:] = xfunc(ts + epsilon) * fc1_dt - xfunc(ts - epsilon) * fc1_dt  # 127-128
        else:  # jvp_derivative 82-106: along (v_t, 1, 0)
            v_s = v_t[n_diffusion:]
            dF[n_diffusion:] = torch.func.jvp(
                model, (x_t[n_diffusion:], ts, rs), (v_s, torch.ones_like(ts), torch.zeros_like(rs))
            )[1]
    F_target = v_t - (t4 - r4) * dF  # 202 -> transports.py 69
    denoising_loss = ((F_pred - F_target) ** 2).flatten(1).mean(1)  # 203 (mean_flat)
    if use_dir_loss:  # 206-209
        cos = torch.nn.functional.cosine_similarity(F_pred, F_target, dim=1)
        denoising_loss = denoising_loss + (1 - cos).flatten(1).mean(1)
    tw, rw = torch.tan(t), torch.tan(r)  # time_weighting 142-143
    weight = 1 / ((tw - rw) + 1.0).sqrt()  # 146-147, 154-155 (sigma_d 1.0)
    weight[:n_diffusion] = 1.0  # 162
    weight = weight * (1 / (denoising_loss.detach() + 10e-6))  # 211, adaptive_weighting 166-168
    return (weight * denoising_loss).mean(), F_target  # 212-213


# --------------------------------------------------------------------------------------------- DMF
# kyungmnlee/dmf @ a6db0f6, loss.py (PyTorch). Unconditional: g_type 'default', so the guided target is v_t
# (57-59), and no class dropout.
def dmf_loss(model, x, eps_fm, eps_mf, t_fm, t_mf, r_mf):
    """DMFLoss.__call__ (142-181) for times and noises already drawn; ``model(x, t, r)`` returns (out, logvar)."""

    def interpolant(x, t, eps):  # 7-23, linear path
        t4 = t.view(-1, 1, 1, 1)
        return (1 - t4) * x + t4 * eps, eps - x

    def log_lv_loss(x, y, lv, eps=0.01):  # 30-35
        err = (x - y) ** 2
        mean_loss = torch.mean(err, dim=list(range(1, len(x.shape))))
        return torch.log((1 / lv.exp()) * mean_loss + eps) + lv

    x_t_fm, v_t_fm = interpolant(x, t_fm, eps_fm)  # 152
    v_fm, lv_fm = model(x_t_fm, t_fm, t_fm)  # 153
    fm_lp_loss = log_lv_loss(v_fm, v_t_fm.detach(), lv_fm)  # 154-157
    x_t_mf, v_t_mf = interpolant(x, t_mf, eps_mf)  # 160
    primals = (x_t_mf, t_mf, r_mf)  # 168
    tangents = (v_t_mf.detach(), torch.ones_like(t_mf), torch.zeros_like(r_mf))  # 169
    (u, lv_mf), (du_dt, _) = torch.func.jvp(model, primals, tangents)  # 170
    u_tgt = (v_t_mf + (r_mf - t_mf).view(-1, 1, 1, 1) * du_dt).detach()  # 171-172
    mf_lp_loss = log_lv_loss(u, u_tgt, lv_mf)  # 173
    loss = 0.5 * (fm_lp_loss + mf_lp_loss)  # 174: (B,) against (B, 1, 1, 1) broadcasts to (B, 1, 1, B)
    return loss.mean(), u_tgt  # train_dmf.py 327
